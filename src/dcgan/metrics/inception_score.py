"""Inception Score (Salimans et al., 2016): exp of the mean KL divergence between each generated image's class
probabilities and their marginal, mean and std over 10 splits. High when every image is clearly one class and
the classes are evenly covered; it reads only the generated images, in whatever classifier the feature space has
(Inception's 1008 classes, or the dataset's own classifier)."""

from __future__ import annotations

import torch

from ..errors import UserError
from .metric import FeatureSets, Measured, Metric, Row

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


def split_sizes(n: int, splits: int = SPLITS) -> list[int]:
    """The sizes of the splits `chunk` makes of n images: [20] * 10 for 200, [2] * 7 + [1] for 15."""
    size = -(-n // splits)
    return [min(size, n - start) for start in range(0, n, size)]


def inception_score_rows(values: dict[str, float], measured: Measured) -> list[Row]:
    """The score with its spread over the splits, labelled; none where each split holds one image (its score is 1)."""
    score, sizes = f"{values['inception_score']:.3f}", split_sizes(measured.n)
    if measured.n <= SPLITS:
        return [("Inception Score", f"{score} (n = {measured.n:,} <= {SPLITS} splits: one image a split, no spread)")]
    return [("Inception Score", f"{score} +- {values['inception_score_std']:.3f} (sd over {len(sizes)} splits of "
             f"{sizes[0]:,})")]


INCEPTION_SCORE = Metric(("inception_score", "inception_score_std"), inception_score, inception_score_rows)
