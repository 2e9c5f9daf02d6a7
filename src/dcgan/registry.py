"""The names of a run's pluggable parts, each tied to the one spec that defines it.

A loss, a generator, a discriminator, a dataset and a metric is each one named spec, written in the module that
owns its concern (models/losses.py, models/architectures.py, data/datasets.py, metrics/...). This module maps
each name to where its spec lives (`"dcgan.models.losses:HINGE"`, as stylegan2-ada's `class_name`), so that the
settings can list and check names without importing the code behind them; `spec(name)` imports that code when it
is first asked. Adding a part is its spec and one line here.

Losses and networks can also be registered at run time (`dcgan.register_loss("mine", MyLoss())`,
`register_generator`, `register_discriminator`): the spec itself is then stored under the name, for this process.
Names are checked when they are used, never fixed when a module is imported. A run may also be given its G, D or
loss as an object instead of a name (`train(cfg, generator=G)`): its setting then holds the object's class as
"module:QualifiedName" (`object_name`), a form no registered name takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any

from .errors import SettingError, UserError

REGISTERED_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # what register() takes: "mine", "r1-strong"
OBJECT_NAME = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*")  # a class, "module:QualifiedName"


@dataclass(frozen=True)
class Registry:
    """The names a setting takes, each with the place of its spec ("module:attribute")."""

    setting: str  # the setting or flag that names one (or, comma-separated, several) of them
    places: dict[str, Any]  # name -> "module:attribute" of a built-in spec, or a spec registered at run time
    built_in: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "built_in", frozenset(self.places))

    @property
    def names(self) -> tuple[str, ...]:
        """The names registered now (built-in ones first)."""
        return tuple(self.places)

    def register(self, name: str, spec: Any) -> None:
        """`spec` under `name` from now on, in this process; a name registered at run time before is replaced."""
        if not isinstance(name, str) or not REGISTERED_NAME.fullmatch(name):
            raise UserError(f"cannot register {name!r:.50}: a name is lowercase letters, digits, - and _ (at most "
                            "40), e.g. 'mine'")
        if name in self.built_in:
            raise UserError(f"'{name}' is a built-in {self.setting.replace('_', ' ')}: register yours under another "
                            "name")
        self.places[name] = spec

    def listed(self) -> str:
        """The names for a help or error text: "bce, lsgan, hinge"."""
        return ", ".join(self.places)

    def check(self, name: str) -> str:
        """`name` when it is registered; a SettingError naming the setting and the choices otherwise."""
        if name not in self.places:
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise SettingError(self.setting, f"unknown --{self.setting.replace('_', '-')} '{shown}': use "
                               f"{self.listed()}")
        return name

    def spec(self, name: str) -> Any:
        """The spec registered as `name` (a built-in one imported on first use)."""
        place = self.places[self.check(name)]
        return load(place) if isinstance(place, str) else place


def object_name(item: Any) -> str:
    """The name a setting holds for an object given in its place: its class, "module:QualifiedName"."""
    return f"{type(item).__module__}:{type(item).__qualname__}"


def is_object_name(name: str) -> bool:
    """Whether a setting's value names an object's class (given to train()) rather than a registered spec."""
    return bool(OBJECT_NAME.fullmatch(name))


@cache
def load(place: str) -> Any:
    module, _, attribute = place.partition(":")
    return getattr(import_module(module), attribute)


# --- losses (models/losses.py): what D and G minimise, and the optimiser defaults that go with it
LOSSES = Registry("loss", {
    "bce": "dcgan.models.losses:BCE",
    "lsgan": "dcgan.models.losses:LSGAN",
    "hinge": "dcgan.models.losses:HINGE",
    "wgan-gp": "dcgan.models.losses:WGAN_GP",
    "relativistic": "dcgan.models.losses:RELATIVISTIC",
    "r1": "dcgan.models.losses:R1",
})

# --- architectures (models/architectures.py): one spec per design of G and of D; --arch names a family, a G and
# a D registered under the same name
GENERATORS = Registry("generator", {
    "dcgan": "dcgan.models.architectures:DCGAN_G",
    "resnet": "dcgan.models.architectures:RESNET_G",
    "mlp": "dcgan.models.architectures:MLP_G",
})
DISCRIMINATORS = Registry("discriminator", {
    "dcgan": "dcgan.models.architectures:DCGAN_D",
    "resnet": "dcgan.models.architectures:RESNET_D",
    "mlp": "dcgan.models.architectures:MLP_D",
})

# --- weights (models/runs.py): which of a checkpoint's generators a RunReference loads
WEIGHTS = Registry("weights", {
    "auto": "dcgan.models.runs:auto_weights",  # the moving average of G when the run kept one (--ema), else G's own
    "ema": "dcgan.models.runs:ema_weights",
    "raw": "dcgan.models.runs:raw_weights",
})


# --- datasets (data/datasets.py): the names --data takes besides a folder path; each spec says how its images are
# found, its classes, its test split and its face kind
DATASETS = Registry("data", {
    "fashion-mnist": "dcgan.data.datasets:FASHION_MNIST",
    "mnist": "dcgan.data.datasets:MNIST",
    "celeba": "dcgan.data.datasets:CELEBA",
    "anime": "dcgan.data.datasets:ANIME",
    "synthetic": "dcgan.data.datasets:SYNTHETIC",
})

# --- metrics (metrics/...): what --eval-metrics chooses; each is a function of the real and generated features
# (and class probabilities, where the feature network has them) returning its named values
METRICS = Registry("eval_metrics", {
    "fid": "dcgan.metrics.fid:FID",
    "kid": "dcgan.metrics.kid:KID",
    "precision": "dcgan.metrics.precision_recall:PRECISION",
    "recall": "dcgan.metrics.precision_recall:RECALL",
    "inception_score": "dcgan.metrics.inception_score:INCEPTION_SCORE",
})
