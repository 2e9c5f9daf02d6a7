"""The training loop: `train(cfg, callbacks)` trains a DCGAN and writes the run's artifacts;
`train(cfg, generator=G, discriminator=D, loss=L)` trains objects of your own the same way (models/parts.py).

Per run (see paths.RunPaths): samples/<run>/real.png, epoch_000.png (before training), epoch_NNN.png,
progress.gif (every epoch's grid, animated) and losses.png; checkpoints/<run>/epoch_NNN.pt, last.pt, config.json
and history.csv; with --tensorboard, event files in checkpoints/<run>/tb/ (see tensorboard.py).

Callbacks (see callbacks.py) watch the run: on_train_start, on_step_end, on_log, on_epoch_end, on_train_end.
One epoch reads in four files: this one, step.py (one step), state.py (what a run holds) and history.py (its
statistics, rows and figure). From train() to an optimizer's step is five calls: train, train_epochs,
train_epoch, step.train_step, step.update_d (or update_g).

Faults: SIGINT / SIGTERM save last.pt at the end of the current step and stop (TrainingStopped, exit code 130 /
143); --resume continues from that step. In a notebook, the interrupt button (SIGINT) instead ends train() with
one line and returns the state as saved, so that the cells below show the run so far. Non-finite losses stop the
run within log_every steps, naming the step, and no checkpoint is written from non-finite weights. Under torchrun
the ranks agree on both every log_every steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import check_places
from ..config import TrainConfig, fields_with
from ..data.batches import epoch_plan
from ..errors import TrainingStopped
from ..files import WriteError, atomic_write_text
from ..metrics.features import write_result
from ..models.losses import Loss
from ..models.parts import Parts
from ..pictures.animation import save_progress_gif
from ..pictures.messages import in_parameter_words
from ..pictures.plots import save_figure
from ..progress import in_notebook, progress_bar
from .distributed import joined_world
from .history import NONE_YET, all_finite, history_csv, history_figure, history_row, measurements, shown
from .signals import StopSignals, signals_raise
from .start import check_run_places, owning_run, start_run
from .state import TrainState, checkpoint_payload, prune_checkpoints, save_checkpoint
from .tensorboard import require_tensorboard, tensorboard_callbacks


def say(line: str) -> None:
    """The default log: print at once, also when stdout is a file or a pipe."""
    print(line, flush=True)


def quiet(line: str) -> None:
    """The log of every rank but the first."""


def train(cfg: TrainConfig, callbacks: Iterable[Any] = (), log: Callable[[str], None] = say,
          flags: Collection[str] | None = None, *, generator: nn.Module | None = None,
          discriminator: nn.Module | None = None, loss: Loss | None = None) -> TrainState:
    """Train (or with cfg.resume, continue) a run; returns the final state. Under torchrun, each process runs
    this with its share of every batch. With --resume, the settings not given are the run's saved ones (`flags`:
    the settings the command line gave, see TrainConfig.over_saved).

    generator, discriminator, loss: a G, D or loss of your own (models/parts.py says what each must do), used
    instead of the ones cfg names; to resume such a run, pass the same kinds of objects again."""
    parts = Parts(generator, discriminator, loss)
    cfg.validate()
    parts.named(cfg).check_parts()  # the registered names and the image size, before any file
    check_places(cfg, fields_with("place", "folder"), fields_with("place", "file"))
    check_run_places(cfg)
    require_tensorboard(cfg)
    callbacks = list(callbacks)
    with joined_world(cfg.device) as (world, device):
        signals = StopSignals(keep_catching=world.distributed)
        log = guarded(log if world.main else quiet, signals)  # a closed stdout stops the run like a signal
        with owning_run(cfg, world, device, log):
            with signals_raise("the run was starting"), how_to_go_on_told(None):
                state = start_run(cfg, log, world, device, flags, parts)
            if signals.received:
                raise TrainingStopped(f"stopped by {signals.name} while the run was starting: nothing was "
                                      "trained", exit_code=signals.exit_code)
            with how_to_go_on_told(state), tensorboard_callbacks(state) as board:
                try:
                    train_epochs(state, signals, callbacks + board, log)
                except TrainingStopped as stop:
                    if not (stop.interrupted and in_notebook()):
                        raise
                    log(in_parameter_words(str(stop)))  # the interrupt button: the state as saved, for the next cells
                    return state
    skipped = state.setup.data.skipped
    told = f"; {sum(skipped.values()):,} input files were skipped (see the first line)" if skipped else ""
    log(f"done: samples in {state.paths.samples}, checkpoints in {state.paths.checkpoints}{told}")
    return state


def guarded(log: Callable[[str], None], signals: StopSignals) -> Callable[[str], None]:
    """`log` that survives a closed stdout (`train ... | head -n 1`): the line is dropped, and the run stops at the
    end of the step as by a signal (signals.StopSignals.stdout_closed)."""

    def guarded_log(line: str) -> None:
        try:
            log(line)
        except BrokenPipeError:
            signals.stdout_closed()

    return guarded_log


def emit(callbacks: list[Any], event: str, state: TrainState) -> None:
    """Call `event` (see callbacks.py) on every callback that has it."""
    for callback in callbacks:
        handler = getattr(callback, event, None)
        if handler is not None:
            handler(state)


def train_epochs(state: TrainState, signals: StopSignals, callbacks: list[Any], log: Callable[[str], None]) -> None:
    """Every epoch still to train, SIGINT / SIGTERM / a closed stdout noted and acted on at the end of a step."""
    with signals:
        emit(callbacks, "on_train_start", state)
        for epoch in range(state.epoch + 1, state.cfg.epochs + 1):
            train_epoch(state, epoch, signals, callbacks, log)
            state.last_row = end_epoch(state, log)
            emit(callbacks, "on_epoch_end", state)
            stop_if_diverged_or_signalled(state, signals)  # a signal that came while the epoch's files were written
        emit(callbacks, "on_train_end", state)


def train_epoch(state: TrainState, epoch: int, signals: StopSignals, callbacks: list[Any],
                log: Callable[[str], None]) -> None:
    """Train one epoch (or, resumed mid-epoch, the rest of it); every rank trains on its slice of each batch."""
    setup, progress = state.setup, state.progress
    cfg, world = setup.cfg, setup.world
    progress.epoch_rng = progress.data_rng.get_state()
    order, coins = epoch_plan(len(setup.data.images), setup.steps_per_epoch, cfg.batch_size, cfg.flip,
                              progress.data_rng)
    done = progress.epoch_step * cfg.batch_size  # resumed mid-epoch: the images already trained on
    order = world.shard(order[done:], cfg.batch_size)
    coins = world.shard(None if coins is None else coins[done:], cfg.batch_size)
    local_batch = world.local_batch(cfg.batch_size)
    labels = iter(setup.labels[order.to(setup.device)].split(local_batch)) if setup.labels is not None else None
    batches = setup.batches.epoch(order, coins, local_batch)
    with progress_bar(batches, total=setup.steps_per_epoch, initial=progress.epoch_step, unit="step", leave=False,
                      desc=f"epoch {epoch}/{cfg.epochs}", disable=not cfg.progress or not world.main) as bar:
        for real in bar:  # (the bar goes when the epoch ends or stops: its one line, or the stop's, says the rest)
            values = state.runner(state, real, None if labels is None else next(labels))
            stacked = torch.stack(list(values.values()))  # (one kernel: the step's statistics side by side)
            progress.epoch_means.add(tuple(values), stacked)
            progress.window_means.add(tuple(values), stacked)
            state.watch.observe(stacked)
            progress.step += 1
            progress.epoch_step += 1
            emit(callbacks, "on_step_end", state)
            if progress.step % cfg.log_every == 0:
                state.last_row = log_window(state, epoch)
                bar.set_postfix(shown(measurements(state.last_row, "step"), state.setup.loss))
                emit(callbacks, "on_log", state)
                stop_if_diverged_or_signalled(state, signals)
            elif signals.received and not world.distributed:  # one process: stop at once
                stop_if_diverged_or_signalled(state, signals)
            if cfg.checkpoint_every_steps and progress.step % cfg.checkpoint_every_steps == 0 \
                    and progress.epoch_step < setup.steps_per_epoch:  # (the epoch's end saves anyway)
                stop_if_diverged_or_signalled(state, signals)
                save_progress(state)
    stop_if_diverged_or_signalled(state, signals)  # the epoch's files are never written from a diverged step


def log_window(state: TrainState, epoch: int) -> dict:
    """A history row of the steps since the last one (means over every rank), appended and returned."""
    means, seconds, steps = state.progress.window_means.pop(state.setup.world.mean)
    row = history_row("step", epoch, state.step, means, seconds, steps * state.cfg.batch_size)
    state.history.append(row)
    return row


def stop_if_diverged_or_signalled(state: TrainState, signals: StopSignals) -> None:
    """Read the first non-finite step, the stop signal and a failed write of rank 0's, agreed over the ranks (one
    host sync). Diverged: stop, naming the step. Signalled: save last.pt (unless this step's is written), then
    stop. A failed write: stop, rank 0 telling it."""
    setup = state.setup
    received, minus_first_bad, write_failed = setup.world.agree(
        [signals.received, -state.watch.first_bad, state.failed_write is not None], setup.device)
    if write_failed:
        raise state.failed_write if state.failed_write else TrainingStopped("", exit_code=2)
    if -minus_first_bad != NONE_YET:
        raise diverged(state, -minus_first_bad, "losses")
    if received:
        signals.received = received
        raise saved_and_stopped(state, signals)


def saved_and_stopped(state: TrainState, signals: StopSignals) -> TrainingStopped:
    """last.pt written (unless this step's is already), and the stop that says where it is."""
    progress = state.progress
    path = state.saved[0] if state.saved and state.saved[1] == progress.step else save_progress(state)
    where = (f"epoch {progress.epoch + 1}, step {progress.step} ({progress.epoch_step} of "
             f"{state.setup.steps_per_epoch} steps into the epoch)" if progress.epoch_step
             else f"the end of epoch {progress.epoch}, step {progress.step}")
    return TrainingStopped(f"stopped by {signals.name} at {where}: saved {path}; continue with --resume"
                           if state.setup.world.main else "", exit_code=signals.exit_code)


def diverged(state: TrainState, step: int, what: str) -> TrainingStopped:
    advice = "Lower --lr, or try --precision fp32, --loss hinge or --spectral-norm"
    if state.saved:
        told = (f"the last good checkpoint, {state.saved[0]} (step {state.saved[1]}), is kept. {advice}; --resume "
                "continues from it")
    else:
        told = f"no checkpoint had been written yet. {advice}, then start the run again"
    return TrainingStopped(f"{what} became non-finite (NaN or infinity) at step {step}: training stopped; {told}"
                           if state.setup.world.main else "", exit_code=1)


@contextlib.contextmanager
def how_to_go_on_told(state: TrainState | None) -> Iterator[None]:
    """A file that could not be written stops the run; its message ends with how to go on from there (`state`:
    the run's, once it has started)."""
    try:
        yield
    except WriteError as error:
        if state is None:
            then = "then run the command again"
        elif state.saved:
            then = f"then continue the run with --resume (from {state.saved[0]}, step {state.saved[1]})"
        else:
            then = "then start the run again (no checkpoint had been written yet)"
        raise WriteError(f"{error}; {then}") from None


def save_progress(state: TrainState, targets: list[Path] | None = None, averaged: bool = False) -> Path:
    """Write the run as it stands to `targets` (always holding last.pt) and history.csv; every rank takes part and
    rank 0 writes. Refuses (stopping the run) when a weight is not finite: a good checkpoint is never replaced.
    `averaged`: the ranks' BatchNorm statistics were just averaged."""
    setup, nets = state.setup, state.nets
    targets = targets or [state.paths.last_checkpoint]
    if not averaged:
        setup.world.average_buffers(*nets.modules())
    if not all_finite(*nets.modules()):
        raise diverged(state, state.step, "weights")
    payload, history = checkpoint_payload(state), history_csv(state.history)

    def write() -> None:
        save_checkpoint(payload, targets)
        atomic_write_text(state.paths.history_csv, history)

    setup.world.on_main(write, setup.device)
    state.saved = (state.paths.last_checkpoint, state.step)
    return targets[0]


def end_epoch(state: TrainState, log: Callable[[str], None]) -> dict:
    """The epoch's row of the history (with --eval-every, its measurements), then its grid, checkpoints,
    history.csv, losses.png and progress.gif; the epoch reported in one line. Returns the row."""
    setup, progress = state.setup, state.progress
    cfg, paths, world = setup.cfg, setup.paths, setup.world
    epoch = progress.epoch + 1
    means, seconds, steps = progress.epoch_means.pop(world.mean)
    row = history_row("epoch", epoch, progress.step, means, seconds, steps * cfg.batch_size)
    progress.epoch, progress.epoch_step = epoch, 0
    progress.epoch_rng = progress.data_rng.get_state()
    world.average_buffers(*state.nets.modules())  # for the grid and the evaluation too
    world.on_main(lambda: state.save_epoch_grid(epoch), setup.device)
    targets = [paths.last_checkpoint, paths.epoch_checkpoint(epoch)]  # last.pt first: a kill between keeps it
    if cfg.eval_every and epoch % cfg.eval_every == 0:
        measured = world.on_main(lambda: measure_epoch(state, log), setup.device) or {}
        row.update(measured)
        if measured and is_best_fid(progress.history, measured):
            targets.append(paths.best_checkpoint)
    progress.history.append(row)
    save_progress(state, targets, averaged=True)

    def tidy() -> None:
        prune_checkpoints(paths, cfg.keep_last)
        for note in save_progress_gif(paths.epoch_grids(), paths.progress_gif):
            log(note)
        fid_label = setup.evaluator.label if setup.evaluator else ""
        save_figure(history_figure(progress.history, f"run {paths.name}", setup.loss, fid_label), paths.losses_plot)

    world.on_main(tidy, setup.device)
    log(f"epoch {epoch}/{cfg.epochs}: " + "  ".join(f"{label} {value}" for label, value in
                                                    shown(measurements(row, "step"), setup.loss).items())
        + f"  {row['seconds']:.1f} s  {row['images_per_s']:,.0f} img/s")
    return row


def measure_epoch(state: TrainState, log: Callable[[str], None]) -> dict[str, float]:
    """Evaluate G now (rank 0): eval_<epoch>.json, one line, and the named values for the epoch's row."""
    progress = state.progress
    result = {"run": state.paths.name, "epoch": progress.epoch, "step": progress.step,
              **state.setup.evaluator.measure(state.sampler)}
    write_result(state.paths.checkpoints, result)
    best = is_best_fid(progress.history, result)
    shown = "".join(f", {name} {result[name]:.3f}" for name in ("precision", "recall") if name in result)
    log(f"epoch {progress.epoch}: FID {result['fid']:.3f} ({result['features']}){shown}"
        f"{'; new best.pt' if best else ''}")
    return {name: result[name] for name in state.setup.evaluator.values}


def is_best_fid(history: list[dict], measured: dict) -> bool:
    """Whether `measured` holds the lowest FID of the run's evaluated epochs (the first one always does)."""
    earlier = [row["fid"] for row in history if row["kind"] == "epoch" and "fid" in row]
    return not earlier or measured["fid"] < min(earlier)
