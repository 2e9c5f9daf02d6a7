"""Training: the loop and everything a run in progress needs.

    loop         train(cfg, callbacks): epochs, logging, stopping, the files written each epoch
    callbacks    the events a notebook or script can watch
    start        starting a run: the request checked, data loaded, networks and optimizers built, restored
    state        TrainState, and what a checkpoint holds of it (saved and restored)
    step         one D step and G step
    graphs       the whole step captured in CUDA graphs and replayed, its first replays checked
    snapshot     what a step changes: copied, put back in place, a replayed step's compared with the eager one's
    runner       how each step runs: eager, from graphs, compiled with a fallback
    losses       bce, lsgan, hinge, wgan-gp and the gradient penalty
    augment      DiffAugment
    ema          the moving average of G's weights
    speed        bf16, channels-last, fused Adam, CUDA graphs, torch.compile: resolved per device
    distributed  torchrun and DistributedDataParallel
    signals      SIGINT / SIGTERM noted, saved at the end of the step
    divergence   non-finite losses noticed without a host sync
    history      running means and history.csv
    tensorboard  optional TensorBoard logs: curves, epoch grids, config; continued across --resume
    variants     several variants trained on one budget and compared

May import: the shared top-level modules, data, models, pictures and metrics.
"""
