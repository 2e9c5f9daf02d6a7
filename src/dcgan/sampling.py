"""Drawing images from a generator: the per-epoch fixed-noise grids and `dcgan sample`."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_checkpoint, restore_networks, saved_config
from .config import TrainConfig
from .models import Generator


@torch.no_grad()
def generate(generator: Generator, noise: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Images in [-1, 1] on the CPU for `noise` (N, nz), with G in eval mode (BatchNorm running stats)."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    try:
        chunks = [generator(part.to(device)).float().cpu() for part in noise.split(batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


def noise_for(count: int, nz: int, seed: int) -> torch.Tensor:
    """The same (count, nz) standard-normal noise for the same seed on every device."""
    return torch.randn(count, nz, generator=torch.Generator().manual_seed(seed))


def load_generator(path: Path, device: torch.device) -> tuple[Generator, TrainConfig, dict]:
    """G from a checkpoint (eval mode, on `device`), its config and the whole checkpoint."""
    payload = load_checkpoint(path)
    generator, _ = restore_networks(payload, path)
    return generator.to(device).eval(), saved_config(payload, path), payload
