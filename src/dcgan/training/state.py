"""The run in progress: TrainState, in three parts (the run's fixed setup, the networks, the progress), and what a
checkpoint holds of it.

`checkpoint_payload(state)` is the checkpoint of the run as it stands; `load_weights_and_optimizers` and
`load_progress` put one back into a run being started. Besides weights and optimizers a checkpoint keeps the step
reached (also in the middle of an epoch), the running means of the unfinished epoch, and every random stream
(data order and flips, each rank's noise, torch's global generators), so that a run resumed on the CPU ends with
the same weights as one that was never interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data.batches import DeviceBatches, StreamedBatches
from ..data.cache import ImageData
from ..errors import UserError
from ..metrics.evaluate import Evaluator
from ..models.checkpoint import FORMAT_VERSION, state_dict_errors
from ..models.losses import Loss
from ..paths import RunPaths
from ..pictures.grids import save_grid
from ..pictures.sampling import generate
from ..registry import LOSSES
from .distributed import World
from .divergence import NonFiniteWatch
from .history import RunningMeans
from .speed import SpeedPlan

SAMPLE_COUNT, SAMPLE_ROWS = 10, 2  # the per-epoch grid: 10 images from fixed noise, 2 rows of 5
# (conditional runs: one row per class, the same 10 noise vectors in every row)
NOISE_SEED_STRIDE = 100_003  # rank r draws its noise from seed + 2 + r * this: streams that never meet
Forward = Callable[..., torch.Tensor]  # a network as the step calls it: itself, compiled, or wrapped in DDP
Statistics = dict[str, torch.Tensor]  # what a step reports: name -> a 0-d tensor on the device


@dataclass
class RunSetup:
    """What a run is fixed to once it has started: its settings, folders, processes, speed plan and data."""

    cfg: TrainConfig  # made concrete: the loss's defaults filled in, channels and classes from the data
    paths: RunPaths
    device: torch.device
    world: World  # the processes of a torchrun launch (one otherwise)
    plan: SpeedPlan  # precision, layout, fused Adam, compile, CUDA graphs
    data: ImageData
    batches: DeviceBatches | StreamedBatches  # real images, ready on the device
    fixed_noise: torch.Tensor  # the grids' noise (saved in the checkpoint too)
    labels: torch.Tensor | None = None  # conditional runs: every image's label, on the device
    fixed_labels: torch.Tensor | None = None  # conditional runs: the grid's labels, one row per class
    evaluator: Evaluator | None = None  # with eval_every: measures G against fixed real images (rank 0)

    @property
    def loss(self) -> Loss:
        return LOSSES.spec(self.cfg.loss)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.cfg.batch_size


@dataclass
class Networks:
    """G, D, their optimizers and the moving average of G, and how the step calls each network."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_forward: Forward
    d_forward: Forward
    d_forward_for_g: Forward  # D in G's step: d_forward, or without DDP (D's weights are not trained there)
    ema_generator: nn.Module | None = None  # with --ema: the moving average of G's weights
    ema_share: torch.Tensor | None = None  # with --ema: this step's weight of G in the average (0-d, on the device)

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws the grids and is evaluated: G's moving average with --ema, else G."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def modules(self) -> list[nn.Module]:
        """G, D and the average: the networks whose weights a checkpoint holds."""
        return [net for net in (self.generator, self.discriminator, self.ema_generator) if net is not None]


@dataclass
class Progress:
    """How far the run has come: what a checkpoint saves besides the networks, optimizers and config."""

    data_rng: torch.Generator  # permutations and flips (CPU)
    noise_rng: torch.Generator  # z for every step (on the device)
    epoch_rng: torch.Tensor  # data_rng's state when the epoch in progress drew its plan
    epoch_means: RunningMeans  # the statistics of the epoch in progress, and of the log window
    window_means: RunningMeans
    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed
    epoch_step: int = 0  # steps completed of the epoch in progress
    history: list[dict] = field(default_factory=list)


@dataclass
class TrainState:
    """A run in progress; `train` returns it when done. Callbacks read it (see callbacks.py)."""

    setup: RunSetup
    nets: Networks
    progress: Progress
    watch: NonFiniteWatch  # the first step with a NaN or infinite statistic
    runner: Callable[..., Statistics]  # execution.StepRunner: runs each step, eager or graphed
    saved: tuple[Path, int] | None = None  # the latest checkpoint written (or resumed from) and its step
    last_row: dict | None = None  # the latest step or epoch row of the history
    sample_path: Path | None = None  # the latest epoch grid

    # what callbacks read most
    cfg = property(lambda self: self.setup.cfg)
    paths = property(lambda self: self.setup.paths)
    step = property(lambda self: self.progress.step)
    epoch = property(lambda self: self.progress.epoch)
    history = property(lambda self: self.progress.history)
    sampler = property(lambda self: self.nets.sampler)

    def save_epoch_grid(self, epoch: int) -> Path:
        setup = self.setup
        nrow = SAMPLE_COUNT if setup.fixed_labels is not None else SAMPLE_COUNT // SAMPLE_ROWS
        images = generate(self.sampler, setup.fixed_noise, labels=setup.fixed_labels)
        self.sample_path = save_grid(images, setup.paths.sample_grid(epoch), nrow)
        return self.sample_path


def noise_seed(seed: int, rank: int) -> int:
    return seed + 2 + NOISE_SEED_STRIDE * rank


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """The checkpoint of the run as it stands. Every rank must call it (it gathers their random streams)."""
    setup, nets, progress, world = state.setup, state.nets, state.progress, state.setup.world
    streams = world.gather(rank_streams(state))
    mean_over_ranks = world.mean if world.distributed else None
    return {
        "format_version": FORMAT_VERSION,
        "config": setup.cfg.to_dict(),
        "generator": nets.generator.state_dict(),
        "discriminator": nets.discriminator.state_dict(),
        **({"generator_ema": nets.ema_generator.state_dict()} if nets.ema_generator is not None else {}),
        "optimizer_g": nets.opt_g.state_dict(),
        "optimizer_d": nets.opt_d.state_dict(),
        "epoch": progress.epoch,  # epochs completed
        "step": progress.step,  # steps completed
        "epoch_step": progress.epoch_step,  # steps completed of the next epoch (a mid-epoch checkpoint)
        "fixed_noise": setup.fixed_noise.cpu(),
        "rng": {"data": progress.epoch_rng, "noise_device": setup.device.type, **streams[0],
                **({"ranks": streams} if world.size > 1 else {})},
        "means": {"epoch": progress.epoch_means.saved(mean_over_ranks),
                  "window": progress.window_means.saved(mean_over_ranks)},
        "history": progress.history,
    }


def rank_streams(state: TrainState) -> dict[str, torch.Tensor]:
    """This process's random streams: its noise generator, and torch's global ones (which dropout uses)."""
    return streams_of(state.progress, state.setup.device)


def streams_of(progress: Progress, device: torch.device) -> dict[str, torch.Tensor]:
    streams = {"noise": progress.noise_rng.get_state(), "torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        streams["torch_cuda"] = torch.cuda.get_rng_state(device)
    return streams


def load_weights_and_optimizers(nets: Networks, payload: dict, path: Path, cfg: TrainConfig) -> None:
    """The checkpoint's weights and optimizer states, loaded into the run's networks and optimizers (built from
    the same architecture settings: start.py checked them)."""
    with state_dict_errors(path):
        nets.generator.load_state_dict(payload["generator"])
        nets.discriminator.load_state_dict(payload["discriminator"])
        if nets.ema_generator is not None:  # a run that had no average yet starts it from G
            nets.ema_generator.load_state_dict(payload.get("generator_ema") or payload["generator"])
    try:
        load_optimizer(nets.opt_g, payload["optimizer_g"], cfg.lr_g, cfg)
        load_optimizer(nets.opt_d, payload["optimizer_d"], cfg.lr_d, cfg)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def load_progress(progress: Progress, payload: dict, path: Path, world: World, device: torch.device,
                     seed: int) -> None:
    """Epochs and steps done, the history, the running means and every random stream, from a checkpoint."""
    try:
        progress.epoch, progress.step = int(payload["epoch"]), int(payload["step"])
        progress.epoch_step = int(payload.get("epoch_step", 0))
        progress.history = list(payload["history"])
        progress.epoch_rng = payload["rng"]["data"]
        progress.data_rng.set_state(progress.epoch_rng)
        restore_rank_streams(progress, payload["rng"], world, device, seed)
        if "means" in payload:
            progress.epoch_means.restore(payload["means"]["epoch"])
            progress.window_means.restore(payload["means"]["window"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, lr: float, cfg: TrainConfig) -> None:
    """Adam's moments from the checkpoint, with this run's learning rate and betas (which --resume may change),
    implementation and memory layout: a checkpoint written on the CPU resumes on a GPU with graphs, one from a
    channels-last run resumes with --compile or --channels-last off, and the other way round."""
    implementation = {key: optimizer.defaults[key] for key in ("fused", "capturable", "foreach")
                      if key in optimizer.defaults}
    # load_state_dict places each `step` by the saved groups' fused / capturable flags (on the parameter's device
    # for fused or capturable Adam, else where it was saved): they must be this run's before loading
    groups = [{**group, **implementation, "lr": lr, "betas": (cfg.beta1, cfg.beta2)}
              for group in saved["param_groups"]]
    optimizer.load_state_dict({**saved, "param_groups": groups})
    lay_out_like_parameters(optimizer)


def lay_out_like_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Give every moment its parameter's strides: a loaded moment keeps the layout it was saved in, and fused Adam
    needs moments shaped and strided like their parameter. A moment of another shape is a ValueError."""
    for parameter, values in optimizer.state.items():
        for key, value in values.items():
            if key == "step" or not isinstance(value, torch.Tensor):
                continue
            if value.shape != parameter.shape:
                raise ValueError(f"Adam's {key} has shape {tuple(value.shape)}, its parameter {tuple(parameter.shape)}")
            if value.stride() != parameter.stride():
                values[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)


def restore_rank_streams(progress: Progress, rng: dict, world: World, device: torch.device, seed: int) -> None:
    """This rank's noise and global generators, when the checkpoint has them for this device and world size;
    else (another device or process count) a new stream that is still the same for the same checkpoint."""
    ranks = rng.get("ranks") or [rng]
    if rng.get("noise_device") == device.type and len(ranks) == world.size:
        put_streams(progress, device, ranks[world.rank])
    else:
        progress.noise_rng.manual_seed(noise_seed(seed, world.rank) + progress.step)


def set_rank_streams(state: TrainState, streams: dict[str, torch.Tensor]) -> None:
    """Put back this process's random streams as rank_streams gave them."""
    put_streams(state.progress, state.setup.device, streams)


def put_streams(progress: Progress, device: torch.device, streams: dict[str, torch.Tensor]) -> None:
    progress.noise_rng.set_state(streams["noise"])
    if "torch_cpu" in streams:
        torch.set_rng_state(streams["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in streams:
        torch.cuda.set_rng_state(streams["torch_cuda"], device)
