"""Inception Score (Salimans et al., 2016): exp of the mean KL divergence between each generated image's class
probabilities and their marginal, mean and std over 10 splits. High when every image is clearly one class and
the classes are evenly covered; it reads only the generated images, in whatever classifier the feature space has
(Inception's 1008 classes, or the dataset's own classifier)."""

from __future__ import annotations

import torch

from ..errors import UserError
from .metric import FeatureSets, Metric

SPLITS = 10  # as the paper and torchmetrics compute it


def inception_score(sets: FeatureSets, splits: int = SPLITS) -> dict[str, float]:
    if sets.fake_probabilities is None:
        raise UserError("the inception_score metric needs class probabilities, which this feature space has not: "
                        "use --eval-features classifier or inception, or drop it from --eval-metrics")
    scores = []
    for part in sets.fake_probabilities.double().clamp_min(1e-12).chunk(splits):
        marginal = part.mean(0, keepdim=True)
        scores.append((part * (part.log() - marginal.log())).sum(1).mean().exp())
    scores = torch.stack(scores)
    return {"inception_score": float(scores.mean()), "inception_score_std": float(scores.std(unbiased=False))}


INCEPTION_SCORE = Metric(("inception_score", "inception_score_std"), inception_score, lambda values, space: [
    ("Inception Score", f"{values['inception_score']:.3f} +- {values['inception_score_std']:.3f}")])
