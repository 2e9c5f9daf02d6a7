"""Kernel distance (KID): unbiased MMD^2 with the cubic polynomial kernel, mean and std over subsets."""

from __future__ import annotations

import warnings

import torch

from .fid import Precomputed
from .metric import FeatureSets, Metric

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


KID = Metric(("kid_mean", "kid_std"), kid,
             lambda values, space: [("KID", f"{values['kid_mean']:.5f} +- {values['kid_std']:.5f}")])
