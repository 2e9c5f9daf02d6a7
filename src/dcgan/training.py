"""The training loop: `train(cfg, callbacks)` trains a DCGAN and writes the run's artifacts.

Per run (see paths.RunPaths): samples/<run>/real.png, epoch_000.png (before training), epoch_NNN.png and
losses.png; checkpoints/<run>/epoch_NNN.pt, last.pt, config.json and history.csv.

Callbacks are objects with any of these methods, each called with the TrainState:
    on_train_start, on_step_end (every step; metrics are not read there), on_log (every log_every steps,
    state.last_row holds the new history row), on_epoch_end (the epoch's grid and checkpoint are written),
    on_train_end.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .augment import diff_augment
from .batches import DeviceBatches, batch_source, epoch_plan
from .cache import ImageData, load_image_data
from .checkpoint import (
    FORMAT_VERSION,
    check_architecture,
    load_checkpoint,
    restore_networks,
    save_checkpoint,
    saved_config,
)
from .conditional import class_rows
from .config import TrainConfig
from .device import pick_device
from .ema import ema_copy, update_ema
from .errors import UserError
from .files import atomic_write_text
from .history import RunningMeans, history_csv, history_row
from .losses import discriminator_loss, generator_loss, gradient_penalty, mean_output
from .networks import build_networks
from .paths import RunPaths, default_run_name, root_or_default, run_paths
from .plots import save_history_figure
from .sampling import generate, noise_for
from .speed import SpeedPlan, adam, prepare_networks, speed_plan
from .transforms import to_signed
from .viz import save_grid

SAMPLE_COUNT, SAMPLE_ROWS = 10, 2  # the per-epoch grid: 10 images from fixed noise, 2 rows of 5
# (conditional runs: one row per class, the same 10 noise vectors in every row)
REAL_COUNT = 64  # real.png: the first 64 training images, 8 x 8


class Callback:
    """Base class for training callbacks; override the events you need (all optional)."""

    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_log(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


@dataclass
class TrainState:
    """Everything about a run in progress; `train` returns it when done."""

    cfg: TrainConfig
    paths: RunPaths
    device: torch.device
    data: ImageData
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    fixed_noise: torch.Tensor
    data_rng: torch.Generator  # permutations and flips (CPU)
    noise_rng: torch.Generator  # z for every step (on the device)
    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed
    history: list[dict] = field(default_factory=list)
    last_row: dict | None = None
    sample_path: Path | None = None  # the latest epoch grid
    checkpoint_path: Path | None = None  # the latest epoch checkpoint
    evaluator: Any = None  # with eval_every: measures G against fixed real images
    plan: SpeedPlan | None = None  # precision, layout, fused Adam, compile
    batches: Any = None  # DeviceBatches or StreamedBatches: real images, ready on the device
    g_forward: Any = None  # what the step calls for G and D: the networks, or their compiled versions
    d_forward: Any = None
    ema_generator: nn.Module | None = None  # with --ema: the moving average of G's weights
    labels: torch.Tensor | None = None  # conditional runs: every image's label, on the device
    fixed_labels: torch.Tensor | None = None  # conditional runs: the grid's labels, one row per class

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.cfg.batch_size

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws the grids and is evaluated: G's moving average with --ema, else G."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def save_epoch_grid(self, epoch: int) -> Path:
        nrow = SAMPLE_COUNT if self.fixed_labels is not None else SAMPLE_COUNT // SAMPLE_ROWS
        images = generate(self.sampler, self.fixed_noise, labels=self.fixed_labels)
        self.sample_path = save_grid(images, self.paths.sample_grid(epoch), nrow)
        return self.sample_path


def say(line: str) -> None:
    """The default log: print at once, also when stdout is a file or a pipe."""
    print(line, flush=True)


def train(cfg: TrainConfig, callbacks: Iterable[Any] = (), log: Callable[[str], None] = say) -> TrainState:
    """Train (or with cfg.resume, continue) a run; returns the final state."""
    cfg.validate()
    callbacks = list(callbacks)
    state = start_run(cfg, log)
    emit(callbacks, "on_train_start", state)
    for epoch in range(state.epoch + 1, state.cfg.epochs + 1):
        train_epoch(state, epoch, callbacks)
        end_epoch(state, log)
        emit(callbacks, "on_epoch_end", state)
    emit(callbacks, "on_train_end", state)
    log(f"done: samples in {state.paths.samples}, checkpoints in {state.paths.checkpoints}")
    return state


def emit(callbacks: list[Any], event: str, state: TrainState) -> None:
    for callback in callbacks:
        handler = getattr(callback, event, None)
        if handler is not None:
            handler(state)


def start_run(cfg: TrainConfig, log: Callable[[str], None]) -> TrainState:
    """Set up a fresh run (writing real.png and epoch_000.png) or restore one from its checkpoint."""
    device = pick_device(cfg.device)
    cfg = dataclasses.replace(cfg.resolved(), run=cfg.run or default_run_name(cfg.data, cfg.image_size))
    paths = run_paths(cfg.run, cfg.samples_dir, cfg.checkpoints_dir)
    payload, resume_from = None, None
    if cfg.resume:
        cfg, payload, resume_from = open_resume(cfg, paths)
    elif not cfg.overwrite and (paths.last_checkpoint.exists() or paths.epoch_checkpoints()):
        raise UserError(f"run '{paths.name}' already has checkpoints in {paths.checkpoints}: pass --resume to "
                        "continue it, --overwrite to start it again, or choose another --run name")

    data = load_image_data(cfg.data, cfg.image_size, cfg.channels, root_or_default(cfg.data_dir, "data"),
                           cfg.download, progress=cfg.progress).head(cfg.limit)
    log(data.summary())
    if len(data) < cfg.batch_size:
        raise UserError(f"{len(data)} images are fewer than one batch of {cfg.batch_size}: lower --batch-size "
                        "or use more images")
    cfg = dataclasses.replace(cfg, channels=data.channels, classes=conditional_classes(cfg, data))
    evaluator = None
    if cfg.eval_every:  # fails without a feature space: before anything is written or deleted
        from .evaluate import Evaluator

        evaluator = Evaluator(cfg, cfg.eval_n, cfg.eval_features, device,
                              root_or_default(cfg.checkpoints_dir, "checkpoints"), progress=cfg.progress, log=log,
                              inception_weights=cfg.inception_weights)
    if cfg.overwrite and not cfg.resume:  # only now that the data (and the evaluator) are known to load
        shutil.rmtree(paths.samples, ignore_errors=True)
        shutil.rmtree(paths.checkpoints, ignore_errors=True)

    torch.manual_seed(cfg.seed)
    generator, discriminator = build_networks(cfg)
    generator.to(device)
    discriminator.to(device)
    plan = speed_plan(cfg, device)
    g_forward, d_forward = prepare_networks(plan, generator, discriminator)
    opt_g = adam(generator.parameters(), cfg.lr_g, cfg, plan)
    opt_d = adam(discriminator.parameters(), cfg.lr_d, cfg, plan)
    fixed_noise = noise_for(SAMPLE_COUNT, cfg.nz, cfg.seed)
    state = TrainState(cfg, paths, device, data, generator, discriminator, opt_g, opt_d,
                       fixed_noise=fixed_noise.repeat(cfg.classes, 1) if cfg.conditional else fixed_noise,
                       data_rng=torch.Generator().manual_seed(cfg.seed + 1),
                       noise_rng=torch.Generator(device=device).manual_seed(cfg.seed + 2),
                       plan=plan, batches=batch_source(data, device, cfg.data_on_device, plan.channels_last),
                       g_forward=g_forward, d_forward=d_forward,
                       ema_generator=ema_copy(generator) if cfg.ema else None)
    if cfg.conditional:
        state.labels = torch.from_numpy(data.labels).to(device)
        state.fixed_labels = class_rows(cfg.classes, SAMPLE_COUNT)
    where = "on the device" if isinstance(state.batches, DeviceBatches) else "streamed from the cache"
    log(f"run '{cfg.run}' on {device} ({plan.describe()}; data {where}): {state.steps_per_epoch} steps of "
        f"{cfg.batch_size} images per epoch")
    if payload is not None:
        restore_state(state, payload, resume_from)
        log(f"resuming from {resume_from} at epoch {state.epoch}, step {state.step}")
    else:
        save_grid(to_signed(torch.tensor(data.images[:REAL_COUNT])), paths.real_grid, nrow=8)
        state.save_epoch_grid(0)
    state.evaluator = evaluator
    atomic_write_text(paths.config_json, json.dumps(cfg.to_dict(), indent=2) + "\n")
    return state


def conditional_classes(cfg: TrainConfig, data: ImageData) -> int:
    """The class count of a conditional run (0 otherwise), checked against the data's labels."""
    if not cfg.conditional:
        return 0
    if data.labels is None:
        raise UserError(f"--conditional needs a labelled dataset (fashion-mnist, mnist, synthetic); {data.source} "
                        "has no labels: drop --conditional")
    found = max(len(data.classes), int(data.labels.max()) + 1)
    if cfg.classes and cfg.classes != found:
        raise UserError(f"--classes {cfg.classes} does not match the {found} classes of {data.source}: "
                        "drop --classes")
    return found


def open_resume(cfg: TrainConfig, paths: RunPaths) -> tuple[TrainConfig, dict, Path]:
    """The checkpoint to continue from, checked against the requested run before any data is loaded."""
    path = paths.checkpoint_file(cfg.checkpoint)
    payload = load_checkpoint(path)
    saved = saved_config(payload, path)
    check_architecture(saved, cfg, path)
    if int(payload["epoch"]) >= cfg.epochs:
        raise UserError(f"{path} already holds {payload['epoch']} epochs: pass --epochs above "
                        f"{payload['epoch']} to train further")
    return dataclasses.replace(cfg, channels=saved.channels), payload, path


def restore_state(state: TrainState, payload: dict, path: Path) -> None:
    """Load weights, optimizers, progress, fixed noise and RNG streams from a checkpoint."""
    generator, discriminator = restore_networks(payload, path)
    state.generator.load_state_dict(generator.state_dict())
    state.discriminator.load_state_dict(discriminator.state_dict())
    try:
        if state.ema_generator is not None:  # a run that had no average yet starts it from G
            state.ema_generator.load_state_dict(payload.get("generator_ema") or generator.state_dict())
        state.opt_g.load_state_dict(payload["optimizer_g"])
        state.opt_d.load_state_dict(payload["optimizer_d"])
        state.fixed_noise = payload["fixed_noise"].float()
        state.epoch, state.step = int(payload["epoch"]), int(payload["step"])
        state.history = list(payload["history"])
        state.data_rng.set_state(payload["rng"]["data"])
        if payload["rng"].get("noise_device") == state.device.type:
            state.noise_rng.set_state(payload["rng"]["noise"])
            restore_global_rng_states(payload["rng"], state.device)
        else:  # another device's generator state cannot be restored: a repeatable new stream instead
            state.noise_rng.manual_seed(state.cfg.seed + 2 + state.step)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def train_step(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None = None) -> torch.Tensor:
    """One D step, and one G step every n_critic steps; returns [loss_D, loss_G, D(x), D(G(z))] on the device
    (no host sync). loss_G is the G step's loss, or on steps without one, G's loss on this batch."""
    cfg, G, D = state.cfg, state.g_forward, state.d_forward
    batch, rng = real.shape[0], state.noise_rng
    noise = torch.randn(batch, cfg.nz, device=state.device, generator=rng)
    real_args, fake_args = (), ()  # the labels conditional networks take with the images
    if real_labels is not None:
        real_args = (real_labels,)
        fake_args = (torch.randint(cfg.classes, (batch,), device=state.device, generator=rng),)
    policies = cfg.augmentations()
    with state.plan.autocast():
        fake = G(noise, *fake_args)
        real_seen, fake_seen = diff_augment(real, policies, rng), diff_augment(fake.detach(), policies, rng)
        real_out, fake_out = D(real_seen, *real_args).float(), D(fake_seen, *fake_args).float()
        loss_d = discriminator_loss(real_out, fake_out, cfg.real_label, cfg.fake_label, cfg.loss)
        if cfg.loss == "wgan-gp":  # eager D: the penalty differentiates twice
            mixing = torch.rand(batch, device=state.device, generator=rng)
            penalty = gradient_penalty(lambda images: state.discriminator(images, *real_args), real_seen, fake_seen,
                                       mixing)
            loss_d = loss_d + cfg.gp_weight * penalty
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    state.opt_d.step()

    if (state.step + 1) % cfg.n_critic:
        loss_g = generator_loss(fake_out.detach(), cfg.loss)
    else:
        state.discriminator.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        with state.plan.autocast():
            fake_out_for_g = D(diff_augment(fake, policies, rng), *fake_args).float()
        loss_g = generator_loss(fake_out_for_g, cfg.loss)
        state.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        state.opt_g.step()
        state.discriminator.requires_grad_(True)
        if state.ema_generator is not None:
            update_ema(state.ema_generator, state.generator, cfg.ema, (state.step + 1) // cfg.n_critic)

    with torch.no_grad():
        return torch.stack([loss_d.detach(), loss_g.detach(), mean_output(real_out, cfg.loss),
                            mean_output(fake_out, cfg.loss)])


def train_epoch(state: TrainState, epoch: int, callbacks: list[Any]) -> None:
    cfg, batch = state.cfg, state.cfg.batch_size
    order, coins = epoch_plan(len(state.data), state.steps_per_epoch, batch, cfg.flip, state.data_rng)
    epoch_means, window = RunningMeans(state.device), RunningMeans(state.device)
    started = window_started = time.perf_counter()
    bar = tqdm(state.batches.epoch(order, coins, batch), total=state.steps_per_epoch,
               desc=f"epoch {epoch}/{cfg.epochs}", unit="step", disable=not cfg.progress)
    label_batches = iter(state.labels[order.to(state.device)].split(batch)) if state.labels is not None else None
    for real in bar:
        metrics = train_step(state, real, None if label_batches is None else next(label_batches))
        epoch_means.add(metrics)
        window.add(metrics)
        state.step += 1
        emit(callbacks, "on_step_end", state)
        if state.step % cfg.log_every == 0:
            steps = window.count
            means = window.pop()
            now = time.perf_counter()
            state.last_row = history_row("step", epoch, state.step, means, now - window_started, steps * batch)
            state.history.append(state.last_row)
            window_started = now
            bar.set_postfix(loss_D=f"{means[0]:.3f}", loss_G=f"{means[1]:.3f}", D_x=f"{means[2]:.2f}",
                            D_G_z=f"{means[3]:.2f}")
            emit(callbacks, "on_log", state)
    bar.close()
    steps = epoch_means.count
    state.last_row = history_row("epoch", epoch, state.step, epoch_means.pop(), time.perf_counter() - started,
                                 steps * batch)
    state.history.append(state.last_row)
    state.epoch = epoch


def end_epoch(state: TrainState, log: Callable[[str], None]) -> None:
    """Write the epoch's grid, checkpoints, history.csv and losses.png; report the epoch in one line."""
    epoch, paths, row = state.epoch, state.paths, state.last_row
    state.save_epoch_grid(epoch)
    targets = [paths.epoch_checkpoint(epoch), paths.last_checkpoint]
    if state.evaluator is not None and epoch % state.cfg.eval_every == 0:
        targets += measure_epoch(state, log)
    state.checkpoint_path = targets[0]
    save_checkpoint(checkpoint_payload(state), targets)
    prune_checkpoints(paths, state.cfg.keep_last)
    atomic_write_text(paths.history_csv, history_csv(state.history))
    save_history_figure(state.history, paths.losses_plot, title=f"run {paths.name}",
                        fid_label=state.evaluator.label if state.evaluator else "", scores=state.cfg.loss != "bce")
    log(f"epoch {epoch}/{state.cfg.epochs}: loss_D {row['loss_D']:.3f}  loss_G {row['loss_G']:.3f}  "
        f"D(x) {row['D_x']:.3f}  D(G(z)) {row['D_G_z']:.3f}  {row['seconds']:.1f} s  "
        f"{row['images_per_s']:,.0f} img/s")


def measure_epoch(state: TrainState, log: Callable[[str], None]) -> list[Path]:
    """Evaluate G now: FID into the epoch's history row, eval_<epoch>.json; [best.pt] when FID is the lowest."""
    from .evaluate import write_result

    earlier = [row["fid"] for row in state.history if row["kind"] == "epoch" and "fid" in row]
    result = {"run": state.paths.name, "epoch": state.epoch, "step": state.step,
              **state.evaluator.measure(state.sampler)}
    state.last_row["fid"] = result["fid"]
    write_result(state.paths.checkpoints, result)
    best = not earlier or result["fid"] < min(earlier)
    log(f"epoch {state.epoch}: FID {result['fid']:.3f} ({result['features']}), precision {result['precision']:.3f}, "
        f"recall {result['recall']:.3f}{'; new best.pt' if best else ''}")
    return [state.paths.best_checkpoint] if best else []


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "config": state.cfg.to_dict(),
        "generator": state.generator.state_dict(),
        "discriminator": state.discriminator.state_dict(),
        **({"generator_ema": state.ema_generator.state_dict()} if state.ema_generator is not None else {}),
        "optimizer_g": state.opt_g.state_dict(),
        "optimizer_d": state.opt_d.state_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "fixed_noise": state.fixed_noise.cpu(),
        "rng": {"data": state.data_rng.get_state(), "noise": state.noise_rng.get_state(),
                "noise_device": state.device.type, **global_rng_states(state.device)},
        "history": state.history,
    }


def global_rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's global generators, which dropout draws from: saved so a resumed run repeats the same masks."""
    states = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["torch_cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_global_rng_states(saved: dict, device: torch.device) -> None:
    if "torch_cpu" in saved:
        torch.set_rng_state(saved["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in saved:
        torch.cuda.set_rng_state(saved["torch_cuda"], device)


def prune_checkpoints(paths: RunPaths, keep_last: int) -> None:
    """Keep the newest `keep_last` epoch_NNN.pt files (0 keeps all); last.pt is never touched."""
    if keep_last > 0:
        for old in paths.epoch_checkpoints()[:-keep_last]:
            old.unlink(missing_ok=True)
