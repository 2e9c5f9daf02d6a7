"""Training: the loop and everything a run in progress needs.

    loop         train(cfg, callbacks): epochs, logging, stopping, the files written each epoch
    callbacks    the events a notebook or script can watch
    start        starting a run: the request checked, data loaded, networks and optimizers built
    resume       continuing a run: the request checked against its checkpoint, everything put back
    state        TrainState (the run's setup, networks, progress, processes), and the checkpoint it writes
    step         one step: (1) update D, (2) update G, reporting its statistics by name
    execution    how each step runs: eager, from CUDA graphs with their self-check, compiled with a fallback
    graphs       the mechanics of capturing the whole step in a CUDA graph, and a failed capture put right
    snapshot     what a step changes: copied, put back in place, a replayed step's compared with the eager one's
    augment      DiffAugment
    ema          the moving average of G's weights
    speed        bf16, channels-last, fused Adam, CUDA graphs, torch.compile: resolved per device
    distributed  torchrun and DistributedDataParallel
    signals      SIGINT / SIGTERM noted, saved at the end of the step
    history      the named statistics: how each is shown, running means, non-finite watch, history.csv, figure
    tensorboard  optional TensorBoard logs: curves, epoch grids, config; continued across --resume
    event_files  TensorBoard's event files after a failed write: cut back to whole records, no thread traceback
    variants     several variants trained on one budget and compared
    toy          the course's toy GAN (G learns "1010"), for notebook 00

May import: the shared top-level modules, data, models, pictures and metrics.
"""
