"""Class-conditional G and D (CGAN, Mirza & Osindero, 2014) around any of the unconditional networks.

G(z, y): a learned embedding of the label y is appended to z, so the base generator is built for
nz + LABEL_DIM inputs. D(x, y): the label's embedding, one value per pixel, is appended to the image as one
more channel, so the base discriminator is built for channels + 1. Without labels both cycle through the
classes (0, 1, ..., K-1, 0, ...): a balanced draw for evaluation and the latent-space tools.
"""

from __future__ import annotations

import torch
from torch import nn

LABEL_DIM = 50  # length of G's label embedding


def cycling_labels(count: int, classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """0, 1, ..., classes-1, 0, 1, ...: `count` labels with every class equally often (up to one)."""
    return torch.arange(count, device=device) % classes


def class_rows(classes: int, columns: int) -> torch.Tensor:
    """Labels for a grid with one row per class: 0 x columns, 1 x columns, ..."""
    return torch.arange(classes).repeat_interleave(columns)


class ConditionalGenerator(nn.Module):
    def __init__(self, base: nn.Module, classes: int, nz: int):
        super().__init__()
        self.base, self.classes, self.nz = base, classes, nz
        self.embed = nn.Embedding(classes, LABEL_DIM)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # z: (B, nz) or (B, nz, 1, 1), labels: (B,) -> images (B, channels, S, S)
        if labels is None:
            labels = cycling_labels(z.shape[0], self.classes, z.device)
        return self.base(torch.cat([z.flatten(1), self.embed(labels).to(z.dtype)], dim=1))


class ConditionalDiscriminator(nn.Module):
    def __init__(self, base: nn.Module, classes: int, image_size: int):
        super().__init__()
        self.base, self.classes, self.image_size = base, classes, image_size
        self.embed = nn.Embedding(classes, image_size * image_size)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # images: (B, channels, S, S), labels: (B,) -> logits (B,)
        if labels is None:
            labels = cycling_labels(images.shape[0], self.classes, images.device)
        plane = self.embed(labels).to(images.dtype).view(-1, 1, self.image_size, self.image_size)
        return self.base(torch.cat([images, plane], dim=1))
