"""The run in progress: TrainState, and what a checkpoint holds of it.

`checkpoint_payload(state)` is the checkpoint of the run as it stands; `restore_state` puts one back. Besides
weights and optimizers a checkpoint keeps the step reached (also in the middle of an epoch), the running means
of the unfinished epoch, and every random stream (data order and flips, each rank's noise, torch's global
generators), so that a run resumed on the CPU ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data.cache import ImageData
from ..errors import UserError
from ..models.checkpoint import FORMAT_VERSION, restore_networks
from ..paths import RunPaths
from ..pictures.grids import save_grid
from ..pictures.sampling import generate
from .distributed import World
from .signals import StopSignals
from .speed import SpeedPlan

SAMPLE_COUNT, SAMPLE_ROWS = 10, 2  # the per-epoch grid: 10 images from fixed noise, 2 rows of 5
# (conditional runs: one row per class, the same 10 noise vectors in every row)
NOISE_SEED_STRIDE = 100_003  # rank r draws its noise from seed + 2 + r * this: streams that never meet


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
    epoch_step: int = 0  # steps completed of the epoch in progress
    epoch_rng: torch.Tensor | None = None  # data_rng's state when the epoch in progress drew its plan
    history: list[dict] = field(default_factory=list)
    last_row: dict | None = None
    sample_path: Path | None = None  # the latest epoch grid
    checkpoint_path: Path | None = None  # the latest epoch checkpoint
    saved: tuple[Path, int] | None = None  # the latest checkpoint written (or resumed from) and its step
    evaluator: Any = None  # with eval_every: measures G against fixed real images (rank 0)
    plan: SpeedPlan | None = None  # precision, layout, fused Adam, compile
    batches: Any = None  # DeviceBatches or StreamedBatches: real images, ready on the device
    g_forward: Any = None  # what the step calls for G and D: the networks, or their compiled / DDP versions
    d_forward: Any = None
    d_forward_for_g: Any = None  # D in G's step: d_forward, or without DDP (D's weights are not trained there)
    ema_generator: nn.Module | None = None  # with --ema: the moving average of G's weights
    labels: torch.Tensor | None = None  # conditional runs: every image's label, on the device
    fixed_labels: torch.Tensor | None = None  # conditional runs: the grid's labels, one row per class
    world: World = field(default_factory=World)  # the processes of a torchrun launch (one otherwise)
    signals: StopSignals = field(default_factory=StopSignals)  # SIGINT / SIGTERM noted during training
    epoch_means: Any = None  # RunningMeans of the epoch in progress, and of the log window
    window_means: Any = None
    watch: Any = None  # NonFiniteWatch: the first step with a NaN or infinite metric
    ema_share: torch.Tensor | None = None  # with --ema: this step's weight of G in the average (0-d, on the device)
    runner: Any = None  # StepRunner (set by train): runs each step eagerly or from CUDA graphs

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


def noise_seed(seed: int, rank: int) -> int:
    return seed + 2 + NOISE_SEED_STRIDE * rank


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """The checkpoint of the run as it stands. Every rank must call it (it gathers their random streams)."""
    world = state.world
    streams = world.gather(rank_streams(state))
    mean_over_ranks = world.mean if world.distributed else None
    return {
        "format_version": FORMAT_VERSION,
        "config": state.cfg.to_dict(),
        "generator": state.generator.state_dict(),
        "discriminator": state.discriminator.state_dict(),
        **({"generator_ema": state.ema_generator.state_dict()} if state.ema_generator is not None else {}),
        "optimizer_g": state.opt_g.state_dict(),
        "optimizer_d": state.opt_d.state_dict(),
        "epoch": state.epoch,  # epochs completed
        "step": state.step,  # steps completed
        "epoch_step": state.epoch_step,  # steps completed of the next epoch (a mid-epoch checkpoint)
        "fixed_noise": state.fixed_noise.cpu(),
        "rng": {"data": state.epoch_rng, "noise_device": state.device.type, **streams[0],
                **({"ranks": streams} if world.size > 1 else {})},
        "means": {"epoch": state.epoch_means.saved(mean_over_ranks),
                  "window": state.window_means.saved(mean_over_ranks)},
        "history": state.history,
    }


def rank_streams(state: TrainState) -> dict[str, torch.Tensor]:
    """This process's random streams: its noise generator, and torch's global ones (which dropout uses)."""
    streams = {"noise": state.noise_rng.get_state(), "torch_cpu": torch.get_rng_state()}
    if state.device.type == "cuda":
        streams["torch_cuda"] = torch.cuda.get_rng_state(state.device)
    return streams


def restore_state(state: TrainState, payload: dict, path: Path) -> None:
    """Load weights, optimizers, progress, fixed noise, running means and random streams from a checkpoint."""
    generator, discriminator = restore_networks(payload, path)
    state.generator.load_state_dict(generator.state_dict())
    state.discriminator.load_state_dict(discriminator.state_dict())
    try:
        if state.ema_generator is not None:  # a run that had no average yet starts it from G
            state.ema_generator.load_state_dict(payload.get("generator_ema") or generator.state_dict())
        load_optimizer(state.opt_g, payload["optimizer_g"], state.cfg.lr_g, state.cfg)
        load_optimizer(state.opt_d, payload["optimizer_d"], state.cfg.lr_d, state.cfg)
        state.fixed_noise = payload["fixed_noise"].float()
        state.epoch, state.step = int(payload["epoch"]), int(payload["step"])
        state.epoch_step = int(payload.get("epoch_step", 0))
        state.history = list(payload["history"])
        state.epoch_rng = payload["rng"]["data"]
        state.data_rng.set_state(state.epoch_rng)
        restore_rank_streams(state, payload["rng"])
        if "means" in payload:
            state.epoch_means.restore(payload["means"]["epoch"])
            state.window_means.restore(payload["means"]["window"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None
    state.saved = (path, state.step)


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


def restore_rank_streams(state: TrainState, rng: dict) -> None:
    """This rank's noise and global generators, when the checkpoint has them for this device and world size;
    else (another device or process count) a new stream that is still the same for the same checkpoint."""
    ranks = rng.get("ranks") or [rng]
    if rng.get("noise_device") == state.device.type and len(ranks) == state.world.size:
        set_rank_streams(state, ranks[state.world.rank])
    else:
        state.noise_rng.manual_seed(noise_seed(state.cfg.seed, state.world.rank) + state.step)


def set_rank_streams(state: TrainState, streams: dict[str, torch.Tensor]) -> None:
    """Put back this process's random streams as rank_streams gave them."""
    state.noise_rng.set_state(streams["noise"])
    if "torch_cpu" in streams:
        torch.set_rng_state(streams["torch_cpu"])
    if state.device.type == "cuda" and "torch_cuda" in streams:
        torch.cuda.set_rng_state(streams["torch_cuda"], state.device)
