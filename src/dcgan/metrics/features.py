"""The feature spaces runs are measured in, and measuring in them: a network's features (Inception-v3, or the
dataset's classifier), the chosen metrics (metrics registered in registry.py's METRICS) of generated against real
features, and the Evaluator that `--eval-every` and `evaluate` use. Training imports this, not evaluate.py (the
command, with its face rates and class accuracy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data.cache import real_images_for
from ..data.datasets import classifier_names, has_classifier
from ..data.sources import named
from ..errors import UserError
from ..files import atomic_write_text
from ..paths import eval_result_path, root_or_default
from ..pictures.sampling import generate, noise_for
from ..registry import METRICS
from .classifier import load_or_train_classifier
from .inception import LABEL as INCEPTION_LABEL
from .inception import download_weights, find_weights, inception_missing_message, load_inception
from .metric import FeatureSets

FEATURE_CHOICES = ("auto", "classifier", "inception")
REAL_VS_REAL = "real_vs_real_"  # the prefix of the real-against-real values in a result: "real_vs_real_fid"


@torch.no_grad()
def extract(model, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    batch = getattr(model, "batch_size", 500)
    return torch.cat([model.features(part.to(device)).double().cpu() for part in images.split(batch)])


@torch.no_grad()
def extract_outputs(model, images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(features, class probabilities) of `images`; the probabilities are None where the model has no `outputs`."""
    if not hasattr(model, "outputs"):
        return extract(model, images, device), None
    batch = getattr(model, "batch_size", 500)
    parts = [model.outputs(part.to(device)) for part in images.split(batch)]
    return (torch.cat([features.double().cpu() for features, _ in parts]),
            torch.cat([probabilities.double().cpu() for _, probabilities in parts]))


def feature_model(kind: str, dataset: str, checkpoints_root: Path, data_root: Path, device: torch.device,
                  progress: bool, log, inception_weights: str = ""):
    """(model with .features(images), label for the numbers) for the requested feature space.

    auto: Inception when its weights are on disk, else the dataset's classifier; inception: downloads the
    weights when they are missing."""
    if kind not in FEATURE_CHOICES:
        raise UserError(f"unknown features '{kind}': use {', '.join(FEATURE_CHOICES)}")
    if kind != "classifier":
        weights = find_weights(inception_weights)
        if weights is None and kind == "inception":
            weights = download_weights()
        if weights is not None:
            return load_inception(weights, device), INCEPTION_LABEL
        if not has_classifier(dataset):
            raise UserError(f"no feature space for '{dataset}' without Inception: {inception_missing_message()} "
                            f"(classifier features need a labelled dataset: {classifier_names()})")
    title = named(dataset).title
    why = (f"--features classifier: the features of a small classifier of {title}" if kind == "classifier" else
           "FID, KID, precision and recall need a feature network; Inception-v3's weights are not on this machine, "
           f"so a small classifier of {title} gives the features instead")
    model, test_accuracy = load_or_train_classifier(dataset, checkpoints_root, data_root, device, progress, log, why)
    return model, f"{title} classifier (test accuracy {test_accuracy:.4f})"


def compare_features(real: torch.Tensor, fake: torch.Tensor, metrics: list[str] | None = None,
                     real_probabilities: torch.Tensor | None = None,
                     fake_probabilities: torch.Tensor | None = None) -> dict[str, float]:
    """The values of the metrics named in `metrics` (registry.py's METRICS; None: --eval-metrics' default), in one
    flat dict: {"fid": .., "kid_mean": .., "kid_std": .., "precision": .., "recall": ..}."""
    sets = FeatureSets(real, fake, real_probabilities, fake_probabilities)
    values: dict[str, float] = {}
    for name in TrainConfig().metrics() if metrics is None else metrics:
        values.update(METRICS.spec(name)(sets))
    return values


def other_real_images(cfg, n: int, seed: int = 0, data_dir: str = "") -> torch.Tensor:
    """Up to `n` real images of the run's dataset, none of them among the `n` that real_images_for(cfg, n, seed)
    draws: the next ones of the same random order (fewer where the dataset has fewer than 2n)."""
    return real_images_for(cfg, n, seed, data_dir, skip=n)


class Evaluator:
    """Measures generators of one run against a fixed set of real images (their features computed once), with the
    metrics the run's --eval-metrics chooses."""

    def __init__(self, cfg, n: int, features: str, device: torch.device, checkpoints_root: Path,
                 data_dir: str = "", seed: int = 0, progress: bool = True, log=print, inception_weights: str = ""):
        self.cfg, self.data_dir, self.log = cfg, data_dir, log
        self.nz, self.seed, self.device = cfg.nz, seed, device
        self.metrics = [METRICS.check(name) for name in cfg.metrics()]
        self.values = [value for name in self.metrics for value in METRICS.spec(name).values]  # their names
        self.model, self.label = feature_model(features, cfg.data, checkpoints_root,
                                               root_or_default(data_dir or cfg.data_dir, "data"), device, progress,
                                               log, inception_weights)
        self.real_features, self.real_probabilities = extract_outputs(
            self.model, real_images_for(cfg, n, seed, data_dir), device)

    def measure(self, generator) -> dict:
        """The chosen metrics' values for `generator` against the real set, with the feature label and counts."""
        started = time.perf_counter()
        fake = generate(generator, noise_for(len(self.real_features), self.nz, self.seed + 1))
        fake_features, fake_probabilities = extract_outputs(self.model, fake, self.device)
        values = compare_features(self.real_features, fake_features, self.metrics, self.real_probabilities,
                                  fake_probabilities)
        return {"features": self.label, **values, "n_real": len(self.real_features), "n_fake": len(fake),
                "seconds": time.perf_counter() - started}

    def real_against_real(self) -> dict:
        """The same metrics for as many other real images (disjoint from the real set, same features) against the
        real set: the best values n allows (FID and KID above 0, precision and recall below 1 by chance alone), as
        "real_vs_real_<value>" and "real_vs_real_n"; {} where the dataset has too few images."""
        n = len(self.real_features)
        if self.label == INCEPTION_LABEL:
            self.log(f"real against real: {n:,} more real images through Inception, as long again as the real set")
        others = other_real_images(self.cfg, n, self.seed, self.data_dir)
        if len(others) < 2:
            return {}
        features, probabilities = extract_outputs(self.model, others, self.device)
        values = compare_features(self.real_features, features, self.metrics, self.real_probabilities, probabilities)
        return {f"{REAL_VS_REAL}{name}": value for name, value in values.items()} | {f"{REAL_VS_REAL}n": len(others)}


def write_result(folder: Path, result: dict) -> Path:
    path = eval_result_path(folder, result["epoch"])
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path
