"""Frechet distance between two feature sets (FID when the features are Inception's), via torchmetrics."""

from __future__ import annotations

import torch
from torch import nn

from .metric import Metric


class Precomputed(nn.Module):
    """Feeds already extracted (N, d) features to torchmetrics' image metrics unchanged."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of two (N, d) feature sets."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), normalize=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


FID = Metric(("fid",), lambda sets: {"fid": frechet_distance(sets.real, sets.fake)},
             lambda values, measured: [(f"FID ({measured.space})", f"{values['fid']:.3f}")])
