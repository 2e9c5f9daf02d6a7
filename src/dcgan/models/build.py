"""(G, D) for a TrainConfig: the architecture, its conditional wrappers, and spectral normalisation in D.

    dcgan:  dcgan.Generator / Discriminator (the paper's N(0, 0.02) initialisation)
    resnet: resnet.ResNetGenerator / ResNetDiscriminator (PyTorch's default initialisation)
    mlp:    mlp.MLPGenerator / MLPDiscriminator (PyTorch's default initialisation)
With --loss wgan-gp, D (the critic) takes layer norm where the others use BatchNorm.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import TrainConfig
from ..errors import UserError
from .conditional import LABEL_DIM, ConditionalDiscriminator, ConditionalGenerator
from .dcgan import build_models
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator


def critic_norm(cfg: TrainConfig) -> str:
    """BatchNorm in D, except for WGAN-GP, whose per-image penalty needs images normalised on their own."""
    return "layer" if cfg.loss == "wgan-gp" else "batch"


def base_networks(cfg: TrainConfig, nz: int, d_channels: int) -> tuple[nn.Module, nn.Module]:
    size, channels = cfg.image_size, cfg.channels
    if cfg.arch == "mlp":
        return MLPGenerator(size, nz, cfg.hidden, channels), MLPDiscriminator(size, cfg.hidden, d_channels)
    if cfg.arch == "resnet":
        return (ResNetGenerator(size, nz, cfg.ngf, channels),
                ResNetDiscriminator(size, cfg.ndf, d_channels, critic_norm(cfg)))
    return build_models(size, channels, nz, cfg.ngf, cfg.ndf, critic_norm(cfg), d_channels)


def with_spectral_norm(network: nn.Module) -> nn.Module:
    """Every convolution and linear layer of `network` divided by its largest singular value (in place)."""
    for module in list(network.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            spectral_norm(module)
    return network


def build_networks(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """A freshly initialised (G, D) for the config; seed torch first for repeatable weights."""
    if cfg.conditional and cfg.classes < 2:
        raise UserError(f"a conditional run needs at least 2 classes, got {cfg.classes}")
    extra = 1 if cfg.conditional else 0
    generator, discriminator = base_networks(cfg, cfg.nz + extra * LABEL_DIM, cfg.channels + extra)
    if cfg.conditional:
        generator = ConditionalGenerator(generator, cfg.classes, cfg.nz)
        discriminator = ConditionalDiscriminator(discriminator, cfg.classes, cfg.image_size)
    if cfg.spectral_norm:
        with_spectral_norm(discriminator)
    return generator, discriminator
