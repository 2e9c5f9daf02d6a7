"""A G, a D and a loss of a user's own, defined outside the package (as a notebook cell would define them), for the
tests of `train(cfg, generator=..., discriminator=..., loss=...)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import dcgan


class TinyGenerator(nn.Module):
    """noise (B, nz) -> fully connected -> (width) x S/4 x S/4 -> upsample, conv -> upsample, conv -> images."""

    def __init__(self, nz: int = 16, size: int = 32, channels: int = 3, width: int = 8):
        super().__init__()
        self.width, self.quarter = width, size // 4
        features = width * self.quarter ** 2
        self.project = nn.Sequential(nn.Linear(nz, features), nn.BatchNorm1d(features), nn.ReLU())
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1),
                                nn.BatchNorm2d(width), nn.ReLU(),
                                nn.Upsample(scale_factor=2), nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: (B, nz) -> (B, width, S/4, S/4) -> (B, channels, S, S)
        return self.up(self.project(z).view(-1, self.width, self.quarter, self.quarter))


class TinyDiscriminator(nn.Module):
    """images (B, channels, S, S) -> two strided convs -> one logit per image; reports its mean activation."""

    def __init__(self, size: int = 32, channels: int = 3, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(width * 2 * (size // 4) ** 2, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images)  # (B, 2 width, S/4, S/4)
        dcgan.report("d_activation", features.abs().mean())  # a network reporting a statistic of its own
        return self.head(features.flatten(1)).view(-1)  # (B,)


class HalfBCE(dcgan.Loss):
    """BCE with D's fake term halved; reports the gap between D's mean logits on real and generated images."""

    probabilities = True

    def d_loss(self, real, fake, real_label, fake_label):
        dcgan.report("logit_gap", real.mean() - fake.mean())
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            0.5 * F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))

    def g_loss(self, real, fake):
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class WideGenerator(TinyGenerator):
    """The same design, twice as wide: parameters of other shapes."""

    def __init__(self, nz: int = 16, size: int = 32, channels: int = 3):
        super().__init__(nz, size, channels, width=16)


class SyncingGenerator(TinyGenerator):
    """A G that reads a value back to the host in every forward: a CUDA graph cannot capture it."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if float(z.abs().max()) > 1e6:
            raise AssertionError("unreachable")
        return super().forward(z)


def parts(seed: int = 0, nz: int = 16, size: int = 32, channels: int = 3) -> dict:
    """A new G, D and loss of these classes, the same weights for the same seed."""
    torch.manual_seed(seed)
    return dict(generator=TinyGenerator(nz, size, channels), discriminator=TinyDiscriminator(size, channels),
                loss=HalfBCE())
