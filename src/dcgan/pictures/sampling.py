"""Drawing images from a generator: noise for a seed, and images for noise (and class labels)."""

from __future__ import annotations

import torch
from torch import nn

from ..models.conditional import cycling_labels


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor, batch_size: int = 256,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] on the CPU for `noise` (N, nz), with G in eval mode (BatchNorm running stats).

    A conditional G draws image i of class labels[i]; without labels it cycles through the classes."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    classes = getattr(generator, "classes", 0)
    if classes and labels is None:
        labels = cycling_labels(len(noise), classes)
    parts = [(part,) for part in noise.split(batch_size)] if not classes else \
        zip(noise.split(batch_size), labels.split(batch_size))
    try:
        chunks = [generator(*(t.to(device) for t in part)).float().cpu() for part in parts]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


def noise_for(count: int, nz: int, seed: int) -> torch.Tensor:
    """The same (count, nz) standard-normal noise for the same seed on every device."""
    return torch.randn(count, nz, generator=torch.Generator().manual_seed(seed))
