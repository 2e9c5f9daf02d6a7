"""The residual GAN of the 96x96 anime write-up, for 32, 64, 96 and 128 pixel images.

G lifts z with a linear layer to a small square, then each residual up-block doubles the side:
    main path: BatchNorm -> ReLU -> 2x nearest upsample -> 3x3 conv -> BatchNorm -> ReLU -> 3x3 conv
    shortcut:  2x nearest upsample -> 1x1 conv,        the two added,
and BatchNorm -> ReLU -> 3x3 conv -> tanh gives the image. D is a stack of stride-2 4x4 convolutions, each
followed by BatchNorm (not after the first), LeakyReLU 0.2 and dropout 0.4, then a linear layer to one logit.
BatchNorm momentum is 0.5 in both, as in the write-up.

Shapes for 96x96 (ngf = ndf = 64, nc channels):
    G: (nz) -> (ngf*8) x 6 x 6 -> (ngf*4) x 12 x 12 -> (ngf*2) x 24 x 24 -> (ngf) x 48 x 48 -> (ngf) x 96 x 96
       -> (nc) x 96 x 96
    D: (nc) x 96 x 96 -> (ndf) x 48 x 48 -> (ndf*2) x 24 x 24 -> (ndf*4) x 12 x 12 -> (ndf*8) x 6 x 6 -> 1 logit
Powers of two start from 4 x 4 instead (32: 3 blocks, 64: 4, 128: 5).
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import base_side, doublings, feature_norm

MOMENTUM = 0.5  # BatchNorm running-statistics momentum (Keras momentum 0.5 is the same update)
DROPOUT = 0.4  # D's dropout after every activation
SLOPE = 0.2  # LeakyReLU slope in D


class UpBlock(nn.Module):
    """(in) x s x s -> (out) x 2s x 2s with a residual shortcut."""

    def __init__(self, width_in: int, width_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(width_in, momentum=MOMENTUM), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width_in, width_out, 3, 1, 1, bias=False),  # (out) x 2s x 2s
            nn.BatchNorm2d(width_out, momentum=MOMENTUM), nn.ReLU(),
            nn.Conv2d(width_out, width_out, 3, 1, 1, bias=False),  # (out) x 2s x 2s
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                      nn.Conv2d(width_in, width_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    def __init__(self, image_size: int = 96, nz: int = 100, ngf: int = 64, channels: int = 3):
        super().__init__()
        self.nz, self.side = nz, base_side(image_size)
        n = doublings(image_size)
        self.width = ngf * 2 ** (n - 1)
        # (nz) -> (width) x side x side
        self.project = nn.Linear(nz, self.width * self.side * self.side)
        blocks, width = [], self.width
        for _ in range(n):  # halve the channels down to ngf while the side doubles
            blocks.append(UpBlock(width, max(width // 2, ngf)))
            width = max(width // 2, ngf)
        self.blocks = nn.Sequential(*blocks)
        # (ngf) x S x S -> (channels) x S x S, in [-1, 1]
        self.to_image = nn.Sequential(nn.BatchNorm2d(width, momentum=MOMENTUM), nn.ReLU(),
                                      nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: (B, nz) or (B, nz, 1, 1) -> images (B, channels, S, S)
        x = self.project(z.flatten(1)).view(z.shape[0], self.width, self.side, self.side)
        return self.to_image(self.blocks(x))


class ResNetDiscriminator(nn.Module):
    def __init__(self, image_size: int = 96, ndf: int = 64, channels: int = 3, norm: str = "batch"):
        super().__init__()
        side, n = base_side(image_size), doublings(image_size)
        # (channels) x S x S -> (ndf) x S/2 x S/2, no normalisation on the input layer
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(SLOPE), nn.Dropout(DROPOUT)]
        width = ndf
        for _ in range(n - 1):
            # (width) x s x s -> (width*2) x s/2 x s/2
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), feature_norm(norm, width * 2, MOMENTUM),
                       nn.LeakyReLU(SLOPE), nn.Dropout(DROPOUT)]
            width *= 2
        # (width) x side x side -> (width*side*side) -> 1 logit
        layers += [nn.Flatten(), nn.Linear(width * side * side, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, channels, S, S) -> logits (B,)
        return self.net(images).view(-1)
