"""TrainState: everything about a run in progress, as the training loop, its callbacks and checkpoints see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..data.cache import ImageData
from ..paths import RunPaths
from ..pictures.grids import save_grid
from ..pictures.sampling import generate
from .distributed import World
from .signals import StopSignals
from .speed import SpeedPlan

SAMPLE_COUNT, SAMPLE_ROWS = 10, 2  # the per-epoch grid: 10 images from fixed noise, 2 rows of 5
# (conditional runs: one row per class, the same 10 noise vectors in every row)


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
