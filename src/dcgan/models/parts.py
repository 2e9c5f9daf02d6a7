"""A run's parts, G, D and the loss: built from the registered specs their settings name, or given as objects,
`train(cfg, generator=G, discriminator=D, loss=L)` (and `RunReference(..., generator=G)` for sample, evaluate,
nearest and export).

G is any nn.Module turning noise (B, nz) into images (B, channels, S, S) in [-1, 1] (and taking the labels too in a
conditional run), D any nn.Module turning images into (B,) scores or logits, L an instance of any subclass of
models.losses.Loss, defined anywhere (a notebook cell included). The run's settings then name each object's class
("module:QualifiedName", registry.object_name), and its checkpoint and config.json record the class and the
parameter count. To resume, the same kinds of objects are given again: a missing object, another class or
parameters of other names or shapes end in one line, before anything is written. A network given as an object is
trained as it is (not re-initialised, not wrapped for conditioning); spectral normalisation (--spectral-norm) is
added to a given D, once.

The order of building is fixed, so that the same seed gives the same weights: G's and D's layers, then each one's
initialisation (dcgan: the paper's N(0, 0.02); the others keep PyTorch's), then the label embeddings, then
spectral normalisation.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..config import PARTS, TrainConfig
from ..errors import UserError, first_line
from ..registry import LOSSES, is_object_name, object_name
from .architectures import chosen
from .conditional import LABEL_DIM, ConditionalDiscriminator, ConditionalGenerator
from .losses import Loss

PROBE = 2  # images in the batch each given network is tried on before a run starts


@dataclass(frozen=True)
class Parts:
    """The objects given for a run's parts; None where the settings name a registered spec."""

    generator: nn.Module | None = None  # noise (B, nz) [, labels (B,)] -> images (B, channels, S, S) in [-1, 1]
    discriminator: nn.Module | None = None  # images (B, channels, S, S) [, labels (B,)] -> (B,) scores or logits
    loss: Loss | None = None

    def __post_init__(self) -> None:
        for name, kind, what in (("generator", nn.Module, "a torch.nn.Module turning noise into images"),
                                 ("discriminator", nn.Module, "a torch.nn.Module scoring images"),
                                 ("loss", Loss, "an instance of a subclass of dcgan.Loss")):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                hint = " (call the class: loss=MyLoss())" if isinstance(value, type) else ""
                raise UserError(f"{name}= takes {what}, not {type(value).__name__}{hint}")

    @property
    def given(self) -> tuple[str, ...]:
        """The names of the parts given as objects: ("generator", "loss")."""
        return tuple(name for name in PARTS if getattr(self, name) is not None)

    def named(self, cfg: TrainConfig) -> TrainConfig:
        """cfg with each given part's setting naming the object's class."""
        return dataclasses.replace(cfg, **{name: object_name(getattr(self, name)) for name in self.given})

    def loss_of(self, cfg: TrainConfig) -> Loss:
        """The run's loss: the one given, or the registered one its setting names, weighed by the run's settings."""
        if self.loss is not None:
            return self.loss
        require(cfg, "loss", None)
        return LOSSES.spec(cfg.loss).configured(cfg)

    def named_objects(self) -> dict[str, Any]:
        """The objects given, by the part they are."""
        return {name: getattr(self, name) for name in self.given}

    def check_calls(self, cfg: TrainConfig) -> None:
        """Each given network called once on PROBE images (eval mode, no gradients: nothing in it changes, nothing
        random is drawn): G must turn noise into images of the run's size, D images into one output each."""
        size, channels, labels = cfg.image_size, cfg.channels, [torch.zeros(PROBE, dtype=torch.long)] \
            if cfg.conditional else []
        needs = f"images of shape ({PROBE}, {channels}, {size}, {size}) (image_size {size}, {channels} channel(s))"
        if self.generator is not None:
            images = probe(self.generator, "generator", torch.zeros(PROBE, cfg.nz), labels,
                           f"noise of shape ({PROBE}, {cfg.nz})")
            if tuple(images.shape) != (PROBE, channels, size, size):
                raise UserError(f"generator= turns noise of shape ({PROBE}, {cfg.nz}) into {tuple(images.shape)}; this "
                                f"run needs {needs}: change G, or image_size / nz to fit it")
        if self.discriminator is not None:
            outputs = probe(self.discriminator, "discriminator", torch.zeros(PROBE, channels, size, size), labels,
                            needs)
            if outputs.numel() != PROBE or outputs.shape[0] != PROBE:
                raise UserError(f"discriminator= turns {PROBE} images into outputs of shape {tuple(outputs.shape)}; "
                                f"it must give one score or logit per image, shape ({PROBE},) or ({PROBE}, 1)")

    def check_resumable(self, saved: TrainConfig, payload: dict[str, Any], path: Any) -> None:
        """Before a run given objects resumes from `payload` (trained with the settings `saved`): the same parts
        are objects, of the same classes, their parameters of the same names and shapes. One line otherwise."""
        for name, saved_name in saved.part_names().items():
            given = getattr(self, name)
            if is_object_name(saved_name) and given is None:
                raise UserError(f"checkpoint {path} was trained with its {name} passed as an object ({saved_name}): "
                                f"pass {name}= an instance of it again to resume (from Python: train(cfg, {name}=...))")
            if given is not None and not is_object_name(saved_name):
                raise UserError(f"checkpoint {path} was trained with the registered {name} '{saved_name}', not an "
                                f"object: drop {name}= to resume it, or start a new run")
            if given is not None and object_name(given) != saved_name:
                raise UserError(f"checkpoint {path} was trained with the {name} {saved_name}; this run passes a "
                                f"{object_name(given)}: pass the same class to resume it, or start a new run")
        for name in ("generator", "discriminator"):
            network = getattr(self, name)
            if network is not None:
                trained = with_spectral_norm(copy.deepcopy(network)) if name == "discriminator" and \
                    saved.spectral_norm else network
                problem = state_difference(trained.state_dict(), payload[name])
                if problem:
                    raise UserError(f"checkpoint {path} does not fit the {name} passed: {problem}; pass the network "
                                    "it was trained with, or start a new run")


NO_PARTS = Parts()


def build_networks(cfg: TrainConfig, parts: Parts = NO_PARTS) -> tuple[nn.Module, nn.Module]:
    """(G, D) for the config: the objects `parts` gives, the others freshly built from their specs (seed torch first
    for repeatable weights); D with spectral normalisation when the settings ask for it."""
    if cfg.conditional and cfg.classes < 2:
        raise UserError(f"a conditional run needs at least 2 classes, got {cfg.classes}")
    for name in ("generator", "discriminator"):
        require(cfg, name, getattr(parts, name))
    extra = 1 if cfg.conditional else 0
    g_spec, d_spec = chosen(cfg)
    generator, discriminator = parts.generator, parts.discriminator
    if generator is None:
        generator = g_spec.network(cfg, cfg.nz + extra * LABEL_DIM)  # (nz [+ label]) -> (channels) x S x S
    if discriminator is None:  # (channels [+ label plane]) x S x S -> (B,) logits, normalised as the loss asks
        discriminator = d_spec.network(cfg, cfg.channels + extra, parts.loss_of(cfg).critic_norm)
    if parts.generator is None:
        g_spec.initialise(generator)
    if parts.discriminator is None:
        d_spec.initialise(discriminator)
    if cfg.conditional and parts.generator is None:
        generator = ConditionalGenerator(generator, cfg.classes, cfg.nz)
    if cfg.conditional and parts.discriminator is None:
        discriminator = ConditionalDiscriminator(discriminator, cfg.classes, cfg.image_size)
    if cfg.spectral_norm:
        with_spectral_norm(discriminator)
    return generator, discriminator


def build_generator(cfg: TrainConfig, given: nn.Module | None = None) -> nn.Module:
    """G alone for the config (to load saved weights into): `given`, or built from its spec."""
    require(cfg, "generator", given)
    if given is not None:
        return given
    g_spec = chosen(cfg)[0]
    generator = g_spec.network(cfg, cfg.nz + (LABEL_DIM if cfg.conditional else 0))
    return ConditionalGenerator(generator, cfg.classes, cfg.nz) if cfg.conditional else generator


def require(cfg: TrainConfig, name: str, given: Any) -> None:
    """A UserError when the settings name an object for this part (a run trained with one) and none is given."""
    value = cfg.part_names()[name]
    if given is None and is_object_name(value):
        raise UserError(f"run '{cfg.run}' was trained with its {name} passed as an object ({value}): it loads from "
                        f"Python only, into an instance of that class given as {name}= (RunReference(run=..., "
                        f"{name}=...); to resume, train(cfg, {name}=...))")


def parameter_count(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def described(objects: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a checkpoint and config.json record of the objects given: class, and parameter count for networks."""
    return {name: {"class": object_name(item), **({"parameters": parameter_count(item)}
                                                  if isinstance(item, nn.Module) else {})}
            for name, item in objects.items()}


def importable(name: str) -> bool:
    """Whether the class a setting names ("module:QualifiedName") can be imported again in another process: defined
    at the top level of a module that has a file, not in `__main__` (a notebook, a script) or in a function."""
    module_name, _, qualified = name.partition(":")
    module = sys.modules.get(module_name)
    if module_name == "__main__" or module is None or "<locals>" in qualified or not getattr(module, "__file__", None):
        return False
    found: Any = module
    for part in qualified.split("."):
        found = getattr(found, part, None)
    return isinstance(found, type)


def probe(network: nn.Module, name: str, inputs: torch.Tensor, labels: list[torch.Tensor], what: str) -> torch.Tensor:
    """`network` called once on `inputs` (on its own device, in eval mode, without gradients); its mode is put back."""
    tensors = [*network.parameters(), *network.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            output = network(inputs.to(device), *(label.to(device) for label in labels))
    except Exception as error:  # noqa: BLE001 (the user's network: whatever it raises is told in one line)
        raise UserError(f"{name}= fails on {what}: {type(error).__name__}: {first_line(error)[:200]}") from None
    finally:
        network.train(was_training)
    if not isinstance(output, torch.Tensor):
        raise UserError(f"{name}= returns {type(output).__name__}, not a tensor")
    return output


def state_difference(mine: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> str:
    """The first difference of names or shapes between two state dicts, in words ("" when they fit)."""
    missing, unexpected = sorted(set(saved) - set(mine)), sorted(set(mine) - set(saved))
    if missing:
        return f"the checkpoint holds {missing[0]!r}, which the network has not"
    if unexpected:
        return f"the network has {unexpected[0]!r}, which the checkpoint has not"
    for key, tensor in mine.items():
        if tuple(tensor.shape) != tuple(saved[key].shape):
            return f"{key!r} has shape {tuple(saved[key].shape)} in the checkpoint, {tuple(tensor.shape)} here"
    return ""


def with_spectral_norm(network: nn.Module) -> nn.Module:
    """Every convolution and linear layer of `network` divided by its largest singular value (in place; a layer
    that has it already is left as it is)."""
    for module in list(network.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            spectral_norm(module)
    return network
