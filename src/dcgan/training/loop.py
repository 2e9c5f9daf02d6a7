"""The training loop: `train(cfg, callbacks)` trains a DCGAN and writes the run's artifacts.

Per run (see paths.RunPaths): samples/<run>/real.png, epoch_000.png (before training), epoch_NNN.png,
progress.gif (every epoch's grid, animated) and losses.png; checkpoints/<run>/epoch_NNN.pt, last.pt, config.json
and history.csv; with --tensorboard, event files in checkpoints/<run>/tb/ (see tensorboard.py).

Callbacks (see callbacks.py) watch the run: on_train_start, on_step_end, on_log, on_epoch_end, on_train_end.

Faults: SIGINT / SIGTERM save last.pt at the end of the current step and stop (TrainingStopped, exit code 130 /
143); --resume continues from that step. Non-finite losses stop the run within log_every steps, naming the step,
and no checkpoint is written from non-finite weights. Under torchrun the ranks agree on both every log_every steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..checks import check_places
from ..config import TrainConfig
from ..data.batches import epoch_plan
from ..errors import TrainingStopped
from ..files import WriteError, atomic_write_text
from ..metrics.evaluate import write_result
from ..models.checkpoint import prune_checkpoints, save_checkpoint
from ..pictures.animation import save_progress_gif
from ..pictures.plots import save_history_figure
from .callbacks import emit
from .distributed import joined_world
from .divergence import NONE_YET, all_finite
from .history import history_csv, history_row
from .runner import StepRunner
from .signals import StopSignals, signals_raise
from .start import check_run_places, owning_run, start_run
from .state import TrainState, checkpoint_payload
from .tensorboard import require_tensorboard, tensorboard_callbacks


def say(line: str) -> None:
    """The default log: print at once, also when stdout is a file or a pipe."""
    print(line, flush=True)


def quiet(line: str) -> None:
    """The log of every rank but the first."""


def train(cfg: TrainConfig, callbacks: Iterable[Any] = (), log: Callable[[str], None] = say) -> TrainState:
    """Train (or with cfg.resume, continue) a run; returns the final state. Under torchrun, each process runs
    this with its share of every batch."""
    cfg.validate()
    check_places(cfg)
    check_run_places(cfg)
    require_tensorboard(cfg)
    callbacks = list(callbacks)
    with joined_world(cfg.device) as (world, device):
        signals = StopSignals(keep_catching=world.distributed)
        log = signals.guard(log if world.main else quiet)  # a closed stdout stops the run like a signal
        with owning_run(cfg, world, device, log):
            with signals_raise("the run was starting"):
                state = start_run(cfg, log, world, device)
            if signals.received:
                raise TrainingStopped(f"stopped by {signals.name} while the run was starting: nothing was "
                                      "trained", exit_code=signals.exit_code)
            state.runner = StepRunner(state, log)  # eager, or from CUDA graphs once warm
            with tensorboard_callbacks(state) as board:
                train_epochs(state, signals, callbacks + board, log)
    skipped = f"; {sum(state.data.skipped.values()):,} input files were skipped (see the first line)" \
        if state.data.skipped else ""
    log(f"done: samples in {state.paths.samples}, checkpoints in {state.paths.checkpoints}{skipped}")
    return state


def train_epochs(state: TrainState, signals: StopSignals, callbacks: list[Any], log: Callable[[str], None]) -> None:
    """Every epoch still to train, SIGINT / SIGTERM / a closed stdout noted and acted on at the end of a step."""
    with signals as state.signals:
        emit(callbacks, "on_train_start", state)
        for epoch in range(state.epoch + 1, state.cfg.epochs + 1):
            train_epoch(state, epoch, callbacks)
            end_epoch(state, log)
            emit(callbacks, "on_epoch_end", state)
            check_health(state)  # a signal that came while the epoch's files were written
        emit(callbacks, "on_train_end", state)


def train_epoch(state: TrainState, epoch: int, callbacks: list[Any]) -> None:
    """Train one epoch (or, resumed mid-epoch, the rest of it); every rank trains on its slice of each batch."""
    cfg, world = state.cfg, state.world
    state.epoch_rng = state.data_rng.get_state()
    order, coins = epoch_plan(len(state.data), state.steps_per_epoch, cfg.batch_size, cfg.flip, state.data_rng)
    done = state.epoch_step * cfg.batch_size  # resumed mid-epoch: the images already trained on
    order = world.shard(order[done:], cfg.batch_size)
    coins = world.shard(None if coins is None else coins[done:], cfg.batch_size)
    local_batch = world.local_batch(cfg.batch_size)
    bar = tqdm(state.batches.epoch(order, coins, local_batch), total=state.steps_per_epoch,
               initial=state.epoch_step, desc=f"epoch {epoch}/{cfg.epochs}", unit="step",
               disable=not cfg.progress or not world.main)
    labels = iter(state.labels[order.to(state.device)].split(local_batch)) if state.labels is not None else None
    for real in bar:
        metrics = state.runner(real, None if labels is None else next(labels))
        state.epoch_means.add(metrics)
        state.window_means.add(metrics)
        state.watch.observe(metrics)
        state.step += 1
        state.epoch_step += 1
        emit(callbacks, "on_step_end", state)
        if state.step % cfg.log_every == 0:
            log_window(state, epoch, bar)
            emit(callbacks, "on_log", state)
            check_health(state)
        elif state.signals.received and not world.distributed:  # one process: stop at once
            check_health(state)
        if cfg.checkpoint_every_steps and state.step % cfg.checkpoint_every_steps == 0 \
                and state.epoch_step < state.steps_per_epoch:  # (the epoch's end saves anyway)
            check_health(state)
            save_progress(state)
    bar.close()
    check_health(state)  # the epoch's files are never written from a diverged step
    means, seconds, steps = state.epoch_means.pop(world.mean)
    state.last_row = history_row("epoch", epoch, state.step, means, seconds, steps * cfg.batch_size)
    state.history.append(state.last_row)
    state.epoch, state.epoch_step = epoch, 0
    state.epoch_rng = state.data_rng.get_state()


def log_window(state: TrainState, epoch: int, bar) -> None:
    """A history row of the steps since the last one (means over every rank)."""
    means, seconds, steps = state.window_means.pop(state.world.mean)
    state.last_row = history_row("step", epoch, state.step, means, seconds, steps * state.cfg.batch_size)
    state.history.append(state.last_row)
    bar.set_postfix(loss_D=f"{means[0]:.3f}", loss_G=f"{means[1]:.3f}", D_x=f"{means[2]:.2f}",
                    D_G_z=f"{means[3]:.2f}")


def check_health(state: TrainState) -> None:
    """Read the first non-finite step and the stop signal, agreed over the ranks (one host sync); stop the run
    when either says so."""
    received, minus_first_bad = state.world.agree([state.signals.received, -state.watch.first_bad], state.device)
    if -minus_first_bad != NONE_YET:
        raise diverged(state, -minus_first_bad, "losses")
    if received:
        state.signals.received = received
        path = state.saved[0] if state.saved and state.saved[1] == state.step else save_progress(state)
        where = f"epoch {state.epoch + 1}, step {state.step} ({state.epoch_step} of {state.steps_per_epoch} steps " \
            "into the epoch)" if state.epoch_step else f"the end of epoch {state.epoch}, step {state.step}"
        raise TrainingStopped(f"stopped by {state.signals.name} at {where}: saved {path}; continue with --resume"
                              if state.world.main else "", exit_code=state.signals.exit_code)


def diverged(state: TrainState, step: int, what: str) -> TrainingStopped:
    advice = "Lower --lr, or try --precision fp32, --loss hinge or --spectral-norm"
    if state.saved:
        told = (f"the last good checkpoint, {state.saved[0]} (step {state.saved[1]}), is kept. {advice}; --resume "
                "continues from it")
    else:
        told = f"no checkpoint had been written yet. {advice}, then start the run again"
    return TrainingStopped(f"{what} became non-finite (NaN or infinity) at step {step}: training stopped; {told}"
                           if state.world.main else "", exit_code=1)


def save_progress(state: TrainState, targets: list[Path] | None = None, averaged: bool = False) -> Path:
    """Write the run as it stands to `targets` (always holding last.pt) and history.csv; every rank takes part and
    rank 0 writes. Refuses (stopping the run) when a weight is not finite: a good checkpoint is never replaced.
    `averaged`: the ranks' BatchNorm statistics were just averaged."""
    targets = targets or [state.paths.last_checkpoint]
    if not averaged:
        state.world.average_buffers(state.generator, state.discriminator, state.ema_generator)
    if not all_finite(*(net for net in (state.generator, state.discriminator, state.ema_generator) if net)):
        raise diverged(state, state.step, "weights")
    payload, history = checkpoint_payload(state), history_csv(state.history)

    def write() -> None:
        try:
            save_checkpoint(payload, targets)
            atomic_write_text(state.paths.history_csv, history)
        except WriteError as error:
            raise WriteError(f"{error}; then continue the run with --resume") from None

    state.world.on_main(write, state.device)
    state.saved = (state.paths.last_checkpoint, state.step)
    return targets[0]


def end_epoch(state: TrainState, log: Callable[[str], None]) -> None:
    """Write the epoch's grid, checkpoints, history.csv and losses.png; report the epoch in one line."""
    epoch, paths, row, world, cfg = state.epoch, state.paths, state.last_row, state.world, state.cfg
    world.average_buffers(state.generator, state.discriminator, state.ema_generator)  # for the grid and FID too
    world.on_main(lambda: state.save_epoch_grid(epoch), state.device)
    targets = [paths.epoch_checkpoint(epoch), paths.last_checkpoint]
    if cfg.eval_every and epoch % cfg.eval_every == 0:
        targets += world.on_main(lambda: measure_epoch(state, log), state.device) or []
    state.checkpoint_path = save_progress(state, targets, averaged=True)

    def tidy() -> None:
        prune_checkpoints(paths, cfg.keep_last)
        for note in save_progress_gif(paths.epoch_grids(), paths.progress_gif):
            log(note)
        save_history_figure(state.history, paths.losses_plot, title=f"run {paths.name}",
                            fid_label=state.evaluator.label if state.evaluator else "", scores=cfg.loss != "bce")

    world.on_main(tidy, state.device)
    log(f"epoch {epoch}/{cfg.epochs}: loss_D {row['loss_D']:.3f}  loss_G {row['loss_G']:.3f}  "
        f"D(x) {row['D_x']:.3f}  D(G(z)) {row['D_G_z']:.3f}  {row['seconds']:.1f} s  "
        f"{row['images_per_s']:,.0f} img/s")


def measure_epoch(state: TrainState, log: Callable[[str], None]) -> list[Path]:
    """Evaluate G now: FID into the epoch's history row, eval_<epoch>.json; [best.pt] when FID is the lowest."""
    earlier = [row["fid"] for row in state.history if row["kind"] == "epoch" and "fid" in row]
    result = {"run": state.paths.name, "epoch": state.epoch, "step": state.step,
              **state.evaluator.measure(state.sampler)}
    state.last_row["fid"] = result["fid"]
    write_result(state.paths.checkpoints, result)
    best = not earlier or result["fid"] < min(earlier)
    shown = "".join(f", {name} {result[name]:.3f}" for name in ("precision", "recall") if name in result)
    log(f"epoch {state.epoch}: FID {result['fid']:.3f} ({result['features']}){shown}{'; new best.pt' if best else ''}")
    return [state.paths.best_checkpoint] if best else []
