"""Kernel distance (KID): unbiased MMD^2 with the cubic polynomial kernel, mean and std over subsets. The values are
the MMD^2 itself, not multiplied by 1000 as papers often print Inception KID; their scale follows the features'."""

from __future__ import annotations

import warnings

import torch

from .fid import Precomputed
from .metric import FeatureSets, Measured, Metric, Row

SUBSETS, SUBSET_SIZE = 10, 1000  # what --eval-every and evaluate measure over


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = 10, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, std) of KID over `subsets` random subsets of `subset_size` features from each set."""
    from torchmetrics.image.kid import KernelInceptionDistance

    subset_size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # it warns that it keeps all features: here they are already in memory
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=subset_size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng():  # the subsets are drawn from the global RNG: make them repeatable
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def kid(sets: FeatureSets) -> dict[str, float]:
    mean, std = kernel_distance(sets.real, sets.fake, SUBSETS, SUBSET_SIZE)
    return {"kid_mean": mean, "kid_std": std}


def kid_rows(values: dict[str, float], measured: Measured) -> list[Row]:
    """KID with its scale; its spread only where the subsets differ, i.e. with more images than a subset takes."""
    mean, std = significant(values["kid_mean"]), significant(values["kid_std"])
    if measured.n > SUBSET_SIZE:
        return [("KID (MMD^2, not x 1000)", f"{mean} +- {std} (sd over {SUBSETS} subsets of {SUBSET_SIZE:,})")]
    return [("KID (MMD^2, not x 1000)", f"{mean} (one subset: n = {measured.n:,} <= subset size {SUBSET_SIZE:,}, "
             "no spread)")]


def significant(value: float) -> str:
    """4 significant digits, one decimal from 1,000 up: 0.001234, 13.18, 473.6, 1,234.5."""
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


KID = Metric(("kid_mean", "kid_std"), kid, kid_rows)
