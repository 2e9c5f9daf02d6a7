"""The names of a run's pluggable parts, each tied to the one spec that defines it.

A loss, a generator, a discriminator, a dataset and a metric is each one named spec, written in the module that
owns its concern (models/losses.py, models/architectures.py, data/datasets.py, metrics/...). This module maps
each name to where its spec lives (`"dcgan.models.losses:HINGE"`, as stylegan2-ada's `class_name`), so that the
settings can list and check names without importing the code behind them; `spec(name)` imports that code when it
is first asked. Adding a part is its spec and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from .errors import SettingError


@dataclass(frozen=True)
class Registry:
    """The names a setting takes, each with the place of its spec ("module:attribute")."""

    setting: str  # the setting or flag that names one (or, comma-separated, several) of them
    places: dict[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.places)

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
        """The spec registered as `name` (imported on first use)."""
        return load(self.places[self.check(name)])


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
