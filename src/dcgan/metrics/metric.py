"""What a metric is: a function of the real and generated images' features that returns named values.

Each metric is one `Metric` in the module of its maths (fid.py, kid.py, precision_recall.py), registered by name in
registry.py's METRICS; --eval-metrics chooses among them and the Evaluator measures the chosen ones. A new metric
is its Metric and one line in METRICS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FeatureSets:
    """Everything a metric may read, for the real and the generated images."""

    real: torch.Tensor  # (N, d) float64 features
    fake: torch.Tensor  # (M, d)
    real_probabilities: torch.Tensor | None = None  # (N, classes): where the feature network has a classifier head
    fake_probabilities: torch.Tensor | None = None  # (M, classes)


Row = tuple[str, str]  # (label, value text): one line of `dcgan evaluate`'s table


@dataclass(frozen=True)
class Measured:
    """Where a metric's values were measured, for its lines in the table: the feature space and the images a side
    (a spread over subsets means something only when there are more images than a subset takes)."""

    space: str  # the feature space: "Fashion-MNIST classifier"
    n: int  # images in the smaller of the two sets


def plain_rows(values: dict[str, float], measured: Measured) -> list[Row]:
    return [(name, f"{value:.4f}") for name, value in values.items()]


@dataclass(frozen=True)
class Metric:
    """One measure of generated against real features."""

    values: tuple[str, ...]  # the names of the values it yields, e.g. ("kid_mean", "kid_std")
    measure: Callable[[FeatureSets], dict[str, float]]  # returns exactly those names
    rows: Callable[[dict[str, float], Measured], list[Row]] = plain_rows  # its lines, given its values and where

    def __call__(self, sets: FeatureSets) -> dict[str, float]:
        found = self.measure(sets)
        if set(found) != set(self.values):
            raise ValueError(f"a metric promised {', '.join(self.values)} but returned {', '.join(found)}")
        return {name: float(found[name]) for name in self.values}
