"""DiffAugment (Zhao et al., 2020): random, differentiable changes applied to real and generated images alike
before D sees them, so D cannot memorise a small dataset while G still gets gradients through them.

    translation: shift each image by up to 1/8 of its side (zeros fill in)
    cutout:      zero a square of half the side at a random place in each image
    color:       random brightness, saturation and contrast per image
Images are in [-1, 1], (B, C, S, S); randomness comes from the `generator` passed in (the run's noise stream).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5


def uniform(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U[0, 1) value per image, shaped to broadcast: (B, 1, 1, 1)."""
    return torch.rand(images.shape[0], 1, 1, 1, device=images.device, generator=generator, dtype=images.dtype)


def color(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    images = images + (uniform(images, generator) - 0.5)  # brightness: +-0.5
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * (uniform(images, generator) * 2) + mean  # saturation: x0 to x2
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (uniform(images, generator) + 0.5) + mean  # contrast: x0.5 to x1.5


def random_offsets(count: int, limit: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(-limit, limit + 1, (count, 1, 1), device=device, generator=generator)


def translation(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    batch, _, height, width = images.shape
    dy = random_offsets(batch, int(height * TRANSLATION_RATIO + 0.5), images.device, generator)
    dx = random_offsets(batch, int(width * TRANSLATION_RATIO + 0.5), images.device, generator)
    rows = torch.arange(height, device=images.device).view(1, -1, 1) + dy  # (B, H, 1): source row of each pixel
    cols = torch.arange(width, device=images.device).view(1, 1, -1) + dx  # (B, 1, W)
    inside = ((rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)).unsqueeze(1)  # (B, 1, H, W)
    index = rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)  # (B, H, W) into the flat image
    flat = images.flatten(2)  # (B, C, H*W)
    moved = flat.gather(2, index.flatten(1).unsqueeze(1).expand(-1, flat.shape[1], -1))
    return moved.view_as(images) * inside.to(images.dtype)


def cutout(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    batch, _, height, width = images.shape
    cut_h, cut_w = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, height - cut_h + 1, (batch, 1, 1), device=images.device, generator=generator)
    left = torch.randint(0, width - cut_w + 1, (batch, 1, 1), device=images.device, generator=generator)
    rows = torch.arange(height, device=images.device).view(1, -1, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, -1)
    hole = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)  # (B, H, W)
    return images * (~hole).unsqueeze(1).to(images.dtype)


POLICIES = {"translation": translation, "cutout": cutout, "color": color}


def diff_augment(images: torch.Tensor, policies: Sequence[str],
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply each named policy in turn (none: the images unchanged)."""
    for name in policies:
        images = POLICIES[name](images, generator)
    return images
