"""DCGAN generator and discriminator (Radford et al., 2015) for 32, 64, 96 and 128 pixel images.

G: a transposed convolution lifts z to a small square, then each stride-2 transposed convolution doubles
the side and halves the channels (BatchNorm + ReLU), ending in tanh. D mirrors it with stride-2
convolutions (BatchNorm + LeakyReLU 0.2, none after the first) and returns one logit per image; a WGAN-GP
critic takes layer norm instead of BatchNorm (the penalty is per image, BatchNorm mixes the images of a batch).

Shapes for the 64x64 model (ngf = ndf = 64, nc channels):
    G: (nz) x 1 x 1 -> (ngf*8) x 4 x 4 -> (ngf*4) x 8 x 8 -> (ngf*2) x 16 x 16 -> (ngf) x 32 x 32 -> (nc) x 64 x 64
    D: (nc) x 64 x 64 -> (ndf) x 32 x 32 -> (ndf*2) x 16 x 16 -> (ndf*4) x 8 x 8 -> (ndf*8) x 4 x 4 -> 1 logit
32 drops one doubling, 128 adds one; 96 starts from a 6 x 6 square (6 -> 12 -> 24 -> 48 -> 96).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UserError
from .architectures import CONV_SIZES


def base_side(image_size: int) -> int:
    """Side of the smallest feature map: 6 for 96 pixels, 4 for the powers of two."""
    if image_size not in CONV_SIZES:
        raise UserError(f"unsupported image size {image_size}: use one of {', '.join(map(str, CONV_SIZES))}")
    return 6 if image_size == 96 else 4


def doublings(image_size: int) -> int:
    """How many stride-2 layers take the base square to the image: 3 for 32, 4 for 64 and 96, 5 for 128."""
    return int(math.log2(image_size // base_side(image_size)))


class Generator(nn.Module):
    def __init__(self, image_size: int = 64, nz: int = 100, ngf: int = 64, channels: int = 3):
        super().__init__()
        self.nz = nz
        side, n = base_side(image_size), doublings(image_size)
        width = ngf * 2 ** (n - 1)  # ngf*8 for 64 and 96, ngf*4 for 32, ngf*16 for 128
        layers: list[nn.Module] = [
            # (nz) x 1 x 1 -> (width) x side x side
            nn.ConvTranspose2d(nz, width, side, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            # (width) x s x s -> (width/2) x 2s x 2s
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        # (ngf) x S/2 x S/2 -> (channels) x S x S, in [-1, 1]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: (B, nz) or (B, nz, 1, 1) -> images (B, channels, S, S)
        return self.net(z.view(z.shape[0], self.nz, 1, 1))


def feature_norm(kind: str, width: int, momentum: float = 0.1) -> nn.Module:
    """BatchNorm ("batch") or layer norm over channels and pixels with a per-channel scale ("layer")."""
    return nn.BatchNorm2d(width, momentum=momentum) if kind == "batch" else nn.GroupNorm(1, width)


class Discriminator(nn.Module):
    def __init__(self, image_size: int = 64, ndf: int = 64, channels: int = 3, norm: str = "batch"):
        super().__init__()
        side, n = base_side(image_size), doublings(image_size)
        layers: list[nn.Module] = [
            # (channels) x S x S -> (ndf) x S/2 x S/2, no BatchNorm on the input layer
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = ndf
        for _ in range(n - 1):
            # (width) x s x s -> (width*2) x s/2 x s/2
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       feature_norm(norm, width * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        # (width) x side x side -> 1 x 1 x 1: a logit (no sigmoid; the loss applies it)
        layers.append(nn.Conv2d(width, 1, side, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, channels, S, S) -> logits (B,)
        return self.net(images).view(-1)


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(image_size: int, channels: int, nz: int, ngf: int, ndf: int, norm: str = "batch",
                 d_channels: int = 0) -> tuple[Generator, Discriminator]:
    """A freshly initialised DCGAN (G, D) pair; seed torch first for repeatable weights. d_channels: D's input
    channels where they differ from G's output (a conditional D's extra label plane); 0 = channels."""
    generator = Generator(image_size, nz, ngf, channels)
    discriminator = Discriminator(image_size, ndf, d_channels or channels, norm)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator
