"""(G, D) for a TrainConfig: G's and D's specs (models/architectures.py), their conditional wrappers, and spectral
normalisation in D.

The order of building is fixed, so that the same seed gives the same weights: G's and D's layers, then each one's
initialisation (dcgan: the paper's N(0, 0.02); the others keep PyTorch's), then the label embeddings, then
spectral normalisation.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import TrainConfig
from ..errors import UserError
from .architectures import chosen
from .conditional import LABEL_DIM, ConditionalDiscriminator, ConditionalGenerator


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
    g_spec, d_spec = chosen(cfg)
    generator = g_spec.network(cfg, cfg.nz + extra * LABEL_DIM)  # (nz [+ label]) -> (channels) x S x S
    discriminator = d_spec.network(cfg, cfg.channels + extra)  # (channels [+ label plane]) x S x S -> (B,) logits
    g_spec.initialise(generator)
    d_spec.initialise(discriminator)
    if cfg.conditional:
        generator = ConditionalGenerator(generator, cfg.classes, cfg.nz)
        discriminator = ConditionalDiscriminator(discriminator, cfg.classes, cfg.image_size)
    if cfg.spectral_norm:
        with_spectral_norm(discriminator)
    return generator, discriminator
