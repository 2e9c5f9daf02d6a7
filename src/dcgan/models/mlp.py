"""The plain fully connected GAN (Goodfellow et al., 2014), as in the write-ups: one hidden layer each.

    G: z (nz) -> Linear -> (hidden) -> LeakyReLU(0.2) -> Linear -> (channels*S*S) -> tanh -> (channels) x S x S
    D: (channels) x S x S -> flatten -> Linear -> (hidden) -> LeakyReLU(0.2) -> Linear -> 1 logit
With Fashion-MNIST at 28x28 and hidden 128 this is the 100 -> 128 -> 784 / 784 -> 128 -> 1 network.
"""

from __future__ import annotations

import torch
from torch import nn


class MLPGenerator(nn.Module):
    def __init__(self, image_size: int = 28, nz: int = 100, hidden: int = 128, channels: int = 1):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.net = nn.Sequential(
            nn.Linear(nz, hidden),  # (nz) -> (hidden)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, channels * image_size * image_size),  # (hidden) -> (channels*S*S)
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: (B, nz) or (B, nz, 1, 1) -> images (B, channels, S, S)
        return self.net(z.flatten(1)).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, image_size: int = 28, hidden: int = 128, channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # (channels) x S x S -> (channels*S*S)
            nn.Linear(channels * image_size * image_size, hidden),  # -> (hidden)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),  # -> 1 logit
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, channels, S, S) -> logits (B,)
        return self.net(images).view(-1)
