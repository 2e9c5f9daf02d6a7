"""One spec per generator and per discriminator design: its name, the image sizes it supports, the settings of
its own it reads, its help text and how it is built from a TrainConfig.

registry.GENERATORS and registry.DISCRIMINATORS name them; `--generator` and `--discriminator` choose one each,
and `--arch` (the family) names a G and a D spec of the same name. The settings, the CLI's help, build.py, the
checkpoint's architecture check and the export all ask these specs. A network's module (and torch) is imported
only when one is built, so reading a spec is cheap (the CLI's help lists them).

A new design is its network module, one spec here and one line in registry.py; from a notebook or a script,
`register_generator("mine", build)` (likewise `register_discriminator`) adds one for this process, and
`train(cfg, generator=G)` takes a network object without any name (models/parts.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UserError
from ..registry import DISCRIMINATORS, GENERATORS, Registry, is_object_name, load

if TYPE_CHECKING:
    from torch import nn

    from ..config import TrainConfig

CONV_SIZES = (32, 64, 96, 128)  # a 4 x 4 (or, for 96, 6 x 6) square doubled 3 to 5 times
MLP_SIZES = range(8, 129)  # fully connected: any square side in this range
ANY_SIZE = range(1, 1025)  # a design registered at run time: whatever its builder makes of image_size


@dataclass(frozen=True)
class Architecture:
    """One design of G or of D."""

    name: str
    help: str
    sizes: Sequence[int]  # the image sides it can draw (G) or judge (D)
    uses: tuple[str, ...]  # settings of its own it reads, besides image_size, channels, nz and the loss
    # G: (cfg, inputs) -> the network, inputs being the noise length (nz, plus a label embedding when
    # conditional); D: (cfg, inputs, norm), inputs being the image channels (plus a label plane when conditional)
    # and norm the normalisation the loss asks of D (Loss.critic_norm: "batch" or "layer")
    network: Callable[..., nn.Module]
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
    lambda cfg, channels, norm: load("dcgan.models.dcgan:Discriminator")(cfg.image_size, cfg.ndf, channels, norm),
    "dcgan.models.dcgan:init_weights")
RESNET_D = Architecture(
    "resnet", "strided convolutions with dropout 0.4 (the 96x96 anime recipe; ndf wide)", CONV_SIZES, ("ndf",),
    lambda cfg, channels, norm: load("dcgan.models.resnet:ResNetDiscriminator")(cfg.image_size, cfg.ndf, channels,
                                                                                norm))
MLP_D = Architecture(
    "mlp", "one fully connected hidden layer (hidden wide), any size from 8 to 128", MLP_SIZES, ("hidden",),
    lambda cfg, channels, norm: load("dcgan.models.mlp:MLPDiscriminator")(cfg.image_size, cfg.hidden, channels))


def chosen(cfg: TrainConfig) -> tuple[Architecture | None, Architecture | None]:
    """The specs of cfg's G and D; None for a network given as an object (its setting names its class)."""
    return tuple(None if is_object_name(name) else registry.spec(name)
                 for name, registry in zip(cfg.architectures(), (GENERATORS, DISCRIMINATORS)))


def unused_settings(cfg: TrainConfig, networks: Sequence[Architecture | None] | None = None) -> set[str]:
    """The settings that some design reads but none of `networks` (default: cfg's G and D) does: ngf and ndf for
    an mlp run, all of them for networks given as objects. They shape nothing, so a resume may change them and an
    export leaves them out."""
    every = {name for registry in (GENERATORS, DISCRIMINATORS) for spec in map(registry.spec, registry.names)
             for name in spec.uses}
    return every - {name for spec in (chosen(cfg) if networks is None else networks) if spec is not None
                    for name in spec.uses}


def register_generator(name: str, build: Callable[[TrainConfig], nn.Module] | Architecture,
                       help: str = "registered at run time") -> None:
    """Make `build` the generator `name` for --generator / --arch in this process. `build(cfg)` returns a new G for
    the settings (cfg.nz: the noise length it takes, the label embedding included when conditional); an
    Architecture gives sizes and settings of its own too."""
    register(GENERATORS, name, build, help, lambda cfg, inputs: build(dataclasses.replace(cfg, nz=inputs)))


def register_discriminator(name: str, build: Callable[[TrainConfig], nn.Module] | Architecture,
                           help: str = "registered at run time") -> None:
    """Make `build` the discriminator `name` for --discriminator / --arch in this process. `build(cfg)` returns a
    new D for the settings (cfg.channels: the channels it takes, the label plane included when conditional)."""
    register(DISCRIMINATORS, name, build, help,
             lambda cfg, inputs, norm: build(dataclasses.replace(cfg, channels=inputs)))


def register(registry: Registry, name: str, build, help: str, network: Callable[..., nn.Module]) -> None:
    if isinstance(build, Architecture):
        registry.register(name, dataclasses.replace(build, name=name))
    elif callable(build):
        registry.register(name, Architecture(name, help, ANY_SIZE, (), network))
    else:
        raise UserError(f"register_{registry.setting}({name!r:.40}, ...) takes a function of the settings that "
                        f"returns a network (e.g. lambda cfg: MyNet(cfg.nz)), not {type(build).__name__}")
