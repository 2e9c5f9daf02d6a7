"""Improved precision and recall (Kynkaanniemi et al., 2019): k-nearest-neighbour manifolds in feature space.

Each real feature gets a ball reaching its k-th nearest real neighbour; precision is the share of generated
features inside at least one real ball (are the samples realistic?). Recall swaps the roles (does the model
cover the data?).
"""

from __future__ import annotations

import torch

from .metric import Metric

K = 3  # neighbours: each ball reaches the k-th nearest neighbour


def kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each feature to its k-th nearest other feature of the same set."""
    radii = []
    for part in features.split(chunk):
        distances = torch.cdist(part, features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # +1: the nearest is the point itself (0)
    return torch.cat(radii)


def coverage(manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor, chunk: int = 1024) -> float:
    """Share of `queries` inside at least one ball (centre from `manifold`, radius from `radii`)."""
    inside = [(torch.cdist(part, manifold) <= radii).any(dim=1) for part in queries.split(chunk)]
    return torch.cat(inside).float().mean().item()


def precision(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> float:
    """Share of generated features inside the real manifold."""
    real, fake = real.double(), fake.double()
    return coverage(real, kth_neighbour_radii(real, k), fake)


def recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> float:
    """Share of real features inside the generated manifold."""
    return precision(fake, real, k)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    return precision(real, fake, k), recall(real, fake, k)


PRECISION = Metric(("precision",), lambda sets: {"precision": precision(sets.real, sets.fake)},
                   lambda values, measured: [(f"precision (k={K})", f"{values['precision']:.4f}")])
RECALL = Metric(("recall",), lambda sets: {"recall": recall(sets.real, sets.fake)},
                lambda values, measured: [(f"recall (k={K})", f"{values['recall']:.4f}")])
