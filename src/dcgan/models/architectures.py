"""One spec per generator and per discriminator design: its name, the image sizes it supports, the settings of
its own it reads, its help text and how it is built from a TrainConfig.

registry.GENERATORS and registry.DISCRIMINATORS name them; `--generator` and `--discriminator` choose one each,
and `--arch` (the family) names a G and a D spec of the same name. The settings, the CLI's help, build.py, the
checkpoint's architecture check and the export all ask these specs. A network's module (and torch) is imported
only when one is built, so reading a spec is cheap (the CLI's help lists them).

A new design is its network module, one spec here and one line in registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..registry import DISCRIMINATORS, GENERATORS, LOSSES, load

if TYPE_CHECKING:
    from torch import nn

    from ..config import TrainConfig

CONV_SIZES = (32, 64, 96, 128)  # a 4 x 4 (or, for 96, 6 x 6) square doubled 3 to 5 times
MLP_SIZES = range(8, 129)  # fully connected: any square side in this range


@dataclass(frozen=True)
class Architecture:
    """One design of G or of D."""

    name: str
    help: str
    sizes: Sequence[int]  # the image sides it can draw (G) or judge (D)
    uses: tuple[str, ...]  # settings of its own it reads, besides image_size, channels, nz and the loss
    # (cfg, inputs) -> the network: inputs is G's noise length (nz, plus a label embedding when conditional) or
    # D's image channels (plus a label plane when conditional)
    network: Callable[[TrainConfig, int], nn.Module]
    init: str = ""  # "module:function" applied once G and D are both built; "" keeps PyTorch's initialisation

    def sizes_text(self) -> str:
        """"32, 64, 96 or 128", or "8 to 128" for a range."""
        if isinstance(self.sizes, range):
            return f"{self.sizes.start} to {self.sizes.stop - 1}"
        *most, last = map(str, self.sizes)
        return f"{', '.join(most)} or {last}" if most else last

    def initialise(self, network: nn.Module) -> None:
        if self.init:
            network.apply(load(self.init))


def critic_norm(cfg: TrainConfig) -> str:
    """D's normalisation layers, as the loss asks: BatchNorm, or layer norm for a loss whose per-image penalty needs
    images normalised on their own (WGAN-GP)."""
    return LOSSES.spec(cfg.loss).critic_norm


DCGAN_G = Architecture(
    "dcgan", "the DCGAN generator: transposed convolutions, BatchNorm, ReLU (ngf wide)", CONV_SIZES, ("ngf",),
    lambda cfg, nz: load("dcgan.models.dcgan:Generator")(cfg.image_size, nz, cfg.ngf, cfg.channels),
    "dcgan.models.dcgan:init_weights")
RESNET_G = Architecture(
    "resnet", "residual up-blocks (the 96x96 anime recipe; ngf wide)", CONV_SIZES, ("ngf",),
    lambda cfg, nz: load("dcgan.models.resnet:ResNetGenerator")(cfg.image_size, nz, cfg.ngf, cfg.channels))
MLP_G = Architecture(
    "mlp", "one fully connected hidden layer (hidden wide), any size from 8 to 128", MLP_SIZES, ("hidden",),
    lambda cfg, nz: load("dcgan.models.mlp:MLPGenerator")(cfg.image_size, nz, cfg.hidden, cfg.channels))

DCGAN_D = Architecture(
    "dcgan", "the DCGAN discriminator: strided convolutions, BatchNorm, LeakyReLU (ndf wide)", CONV_SIZES, ("ndf",),
    lambda cfg, channels: load("dcgan.models.dcgan:Discriminator")(cfg.image_size, cfg.ndf, channels,
                                                                   critic_norm(cfg)),
    "dcgan.models.dcgan:init_weights")
RESNET_D = Architecture(
    "resnet", "strided convolutions with dropout 0.4 (the 96x96 anime recipe; ndf wide)", CONV_SIZES, ("ndf",),
    lambda cfg, channels: load("dcgan.models.resnet:ResNetDiscriminator")(cfg.image_size, cfg.ndf, channels,
                                                                          critic_norm(cfg)))
MLP_D = Architecture(
    "mlp", "one fully connected hidden layer (hidden wide), any size from 8 to 128", MLP_SIZES, ("hidden",),
    lambda cfg, channels: load("dcgan.models.mlp:MLPDiscriminator")(cfg.image_size, cfg.hidden, channels))


def chosen(cfg: TrainConfig) -> tuple[Architecture, Architecture]:
    """The specs of cfg's G and D."""
    generator, discriminator = cfg.architectures()
    return GENERATORS.spec(generator), DISCRIMINATORS.spec(discriminator)


def unused_settings(cfg: TrainConfig, networks: Sequence[Architecture] = ()) -> set[str]:
    """The settings that some design reads but none of `networks` (default: cfg's G and D) does: ngf and ndf for
    an mlp run. They shape nothing, so a resume may change them and an export leaves them out."""
    every = {name for registry in (GENERATORS, DISCRIMINATORS) for spec in map(registry.spec, registry.names)
             for name in spec.uses}
    return every - {name for spec in (networks or chosen(cfg)) for name in spec.uses}
