"""The run in progress: TrainState, in three parts (the run's fixed setup, the networks, the progress), the processes
it runs on (World: one, or torchrun's), and what a checkpoint holds of it.

`checkpoint_payload(state)` is the checkpoint of the run as it stands, `save_checkpoint` writes it (resume.py puts
one back; models/checkpoint.py reads and checks one). Besides weights and optimizers a checkpoint keeps the step
reached (also in the middle of an epoch), the running means of the unfinished epoch, and every random stream (data
order and flips, each rank's noise, torch's global generators), so that a run resumed on the CPU ends with the same
weights as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data.batches import DeviceBatches, StreamedBatches
from ..data.cache import ImageData
from ..files import atomic_link, atomic_write_bytes
from ..models.checkpoint import FORMAT_VERSION
from ..models.losses import Loss
from ..models.standing import EMA_STATISTICS, settle_statistics
from ..models.statistics import Statistics
from ..paths import RunPaths
from ..pictures.grids import save_grid
from ..pictures.sampling import generate
from .history import NonFiniteWatch, RunningMeans

if TYPE_CHECKING:
    from ..metrics.features import Evaluator
    from .speed import SpeedPlan

SAMPLE_COUNT, SAMPLE_ROWS = 10, 2  # the per-epoch grid: 10 images from fixed noise, 2 rows of 5
# (conditional runs: one row per class, the same 10 noise vectors in every row)
NOISE_SEED_STRIDE = 100_003  # rank r draws its noise from seed + 2 + r * this: streams that never meet
Forward = Callable[..., torch.Tensor]  # a network as the step calls it: itself, compiled, or wrapped in DDP


@dataclass(frozen=True)
class World:
    """The processes of a run: one, here (training/distributed.py's TorchrunWorld is several). Rank 0 writes."""

    rank: int = 0
    size: int = 1
    distributed: bool = False  # a process group is up (launched by torchrun), even with one process

    @property
    def main(self) -> bool:
        return self.rank == 0

    def local_batch(self, batch: int) -> int:
        """Each process's share of a batch."""
        return batch

    def shard(self, plan: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """This process's part of an epoch plan (the whole plan)."""
        return plan

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over the processes."""
        return tensor

    def average_buffers(self, *networks: nn.Module | None) -> None:
        """Make BatchNorm's running statistics the mean over the processes."""

    def agree(self, values: list, device: torch.device) -> list[int]:
        """Each value's maximum over the processes, as ints (ints or 0-d tensors in; one host sync)."""
        return torch.stack([torch.as_tensor(value, dtype=torch.int64, device=device) for value in values]).tolist()

    def gather(self, item: Any) -> list[Any]:
        """Every process's `item`, in rank order."""
        return [item]

    def barrier(self) -> None:
        """Wait for every process."""

    def on_main(self, job: Callable[[], Any], device: torch.device) -> Any:
        """Run `job` on rank 0 only (the one that writes files)."""
        return job()

    def wrap(self, network: nn.Module, device: torch.device) -> nn.Module:
        """The network as the step calls it across processes (itself)."""
        return network


@dataclass
class RunSetup:
    """What a run is fixed to once it has started: its settings, parts, folders, processes, speed plan and data."""

    cfg: TrainConfig  # made concrete: the loss's defaults filled in, channels and classes from the data
    loss: Loss  # the registered loss cfg.loss names (weighed by the run's settings), or the one given as an object
    paths: RunPaths
    device: torch.device
    world: World  # the processes of a torchrun launch (one otherwise)
    plan: SpeedPlan  # precision, layout, fused Adam, compile, CUDA graphs
    data: ImageData
    batches: DeviceBatches | StreamedBatches  # real images, ready on the device
    fixed_noise: torch.Tensor  # the grids' noise (saved in the checkpoint too)
    steps_per_epoch: int  # full batches of the data (the last incomplete one is dropped)
    policies: tuple[str, ...] = ()  # DiffAugment's, applied to every image D sees
    labels: torch.Tensor | None = None  # conditional runs: every image's label, on the device
    fixed_labels: torch.Tensor | None = None  # conditional runs: the grid's labels, one row per class
    evaluator: Evaluator | None = None  # with eval_every: measures G against fixed real images (rank 0)
    given: dict[str, dict[str, Any]] = field(default_factory=dict)  # the parts given as objects: class, parameters


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
    ema_settled_step: int = -1  # the step whose average's BatchNorm statistics the average holds (-1: none yet)

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
    runner: Callable[..., Statistics]  # runs each step: step.train_step, or execution.StepRunner (graphs, compile)
    saved: tuple[Path, int] | None = None  # the latest checkpoint written (or resumed from) and its step
    last_row: dict | None = None  # the latest step or epoch row of the history
    sample_path: Path | None = None  # the latest epoch grid
    failed_write: Exception | None = None  # a write of rank 0's own (TensorBoard's log) that failed: every rank
    # stops at the next agreement (loop.stop_if_diverged_or_signalled), rank 0 with this error

    # what callbacks read most
    cfg = property(lambda self: self.setup.cfg)
    paths = property(lambda self: self.setup.paths)
    step = property(lambda self: self.progress.step)
    epoch = property(lambda self: self.progress.epoch)
    history = property(lambda self: self.progress.history)

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws the grids, is evaluated and saved for `sample`: G's moving average with --ema,
        holding the BatchNorm statistics of its own weights (recomputed when they moved since), else G."""
        nets, cfg = self.nets, self.cfg
        if nets.ema_generator is None:
            return nets.generator
        if nets.ema_settled_step != self.step:
            settle_statistics(nets.ema_generator, cfg.nz, cfg.batch_size)
            nets.ema_settled_step = self.step
        return nets.ema_generator

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
        "config": dataclasses.asdict(setup.cfg),
        **({"given": setup.given} if setup.given else {}),  # the parts given as objects: class, parameters
        "generator": nets.generator.state_dict(),
        "discriminator": nets.discriminator.state_dict(),
        **({"generator_ema": state.sampler.state_dict(), "ema_statistics": EMA_STATISTICS}
           if nets.ema_generator is not None else {}),
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


def save_checkpoint(payload: dict[str, Any], paths: list[Path]) -> None:
    """Serialise once, write the first path atomically (the old file stays whole until the rename), then make the
    others hard links to it (last.pt costs no disk beside epoch_NNN.pt), or copies where links are not possible."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    first, *others = paths
    atomic_write_bytes(first, buffer.getvalue())
    for path in others:
        if not atomic_link(first, path):
            atomic_write_bytes(path, buffer.getvalue())


def prune_checkpoints(paths: RunPaths, keep_last: int) -> None:
    """Keep the newest `keep_last` epoch_NNN.pt files (0 keeps all); last.pt is never touched."""
    if keep_last > 0:
        for old in paths.epoch_checkpoints()[:-keep_last]:
            old.unlink(missing_ok=True)


def rank_streams(state: TrainState) -> dict[str, torch.Tensor]:
    """This process's random streams: its noise generator, and torch's global ones (which dropout uses)."""
    streams = {"noise": state.progress.noise_rng.get_state(), "torch_cpu": torch.get_rng_state()}
    if state.setup.device.type == "cuda":
        streams["torch_cuda"] = torch.cuda.get_rng_state(state.setup.device)
    return streams


def set_rank_streams(state: TrainState, streams: dict[str, torch.Tensor]) -> None:
    """Put back this process's random streams as rank_streams gave them."""
    put_streams(state.progress, state.setup.device, streams)


def put_streams(progress: Progress, device: torch.device, streams: dict[str, torch.Tensor]) -> None:
    """The noise generator and torch's global ones set to saved states (as rank_streams or a checkpoint has them)."""
    progress.noise_rng.set_state(streams["noise"])
    if "torch_cpu" in streams:
        torch.set_rng_state(streams["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in streams:
        torch.cuda.set_rng_state(streams["torch_cuda"], device)
