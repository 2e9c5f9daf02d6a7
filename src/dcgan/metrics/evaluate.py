"""Compare a run's generated images with real ones in one feature space: the metrics its --eval-metrics chooses
(by default FID, KID, precision and recall), each a Metric registered in registry.py's METRICS.

    result = evaluate(RunReference(run="fm32"), n=10000)   # also: python -m dcgan evaluate --run fm32
writes checkpoints/<run>/eval_<epoch>.json and returns the same numbers as a dict.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data.cache import real_images_for
from ..data.datasets import classifier_names, has_classifier
from ..data.faces import face_detector, faces_for_dataset
from ..data.sources import named
from ..errors import UserError
from ..files import atomic_write_text
from ..models.conditional import cycling_labels
from ..models.runs import RunReference
from ..paths import eval_result_path, root_or_default
from ..pictures.sampling import generate, noise_for
from ..registry import METRICS
from .classifier import load_or_train_classifier
from .face_rate import face_rate
from .inception import LABEL as INCEPTION_LABEL
from .inception import download_weights, find_weights, inception_missing_message, load_inception
from .metric import FeatureSets

FEATURE_CHOICES = ("auto", "classifier", "inception")
FACE_CHOICES = ("auto", "anime", "human", "none")


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
    model, test_accuracy = load_or_train_classifier(dataset, checkpoints_root, data_root, device, progress, log)
    return model, f"{named(dataset).title} classifier (test accuracy {test_accuracy:.4f})"


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


class Evaluator:
    """Measures generators of one run against a fixed set of real images (their features computed once), with the
    metrics the run's --eval-metrics chooses."""

    def __init__(self, cfg, n: int, features: str, device: torch.device, checkpoints_root: Path,
                 data_dir: str = "", seed: int = 0, progress: bool = True, log=print, inception_weights: str = ""):
        self.nz, self.seed, self.device = cfg.nz, seed, device
        self.metrics = [METRICS.check(name) for name in cfg.metrics()]
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


def write_result(folder: Path, result: dict) -> Path:
    path = eval_result_path(folder, result["epoch"])
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def measure_faces(faces: str, cfg, generator, n: int, seed: int, data_dir: str, log) -> dict:
    """Face rates of generated and real images; auto: for face datasets, skipped (with a note) without the
    detector's package."""
    kind = faces_for_dataset(cfg.data) if faces == "auto" else None if faces == "none" else faces
    if kind is None:
        return {}
    try:
        detector = face_detector(kind)
    except UserError as error:
        if faces != "auto":
            raise
        log(f"face rate skipped: {error}")
        return {}
    real = real_images_for(cfg, n, seed, data_dir)
    fake = generate(generator, noise_for(len(real), cfg.nz, seed + 1))
    return {"face_detector": kind, "face_rate_generated": face_rate(fake, detector),
            "face_rate_real": face_rate(real, detector), "n_faces": len(real)}


@torch.no_grad()
def class_accuracy(generator, classifier, nz: int, n: int, classes: int, seed: int, device: torch.device) -> float:
    """Share of `n` generated images (classes in turn) that the classifier puts in the class they were drawn for."""
    labels = cycling_labels(n, classes)
    images = generate(generator, noise_for(n, nz, seed + 2), labels=labels)
    classifier.eval()
    predicted = torch.cat([classifier(part.to(device)).argmax(1).cpu() for part in images.split(500)])
    return (predicted == labels).double().mean().item()


def measure_classes(cfg, generator, n: int, checkpoints_root: Path, data_dir: str, device: torch.device, seed: int,
                    progress: bool, log) -> dict:
    """For a conditional run on a labelled dataset: how often the dataset's classifier recognises the class G
    was asked for (chance: 1 / classes)."""
    if not cfg.conditional or not has_classifier(cfg.data):
        return {}
    classifier, test_accuracy = load_or_train_classifier(cfg.data, checkpoints_root,
                                                         root_or_default(data_dir or cfg.data_dir, "data"), device,
                                                         progress, log)
    return {"class_accuracy": class_accuracy(generator, classifier, cfg.nz, n, cfg.classes, seed, device),
            "classifier_test_accuracy": test_accuracy, "n_class": n}


def evaluate(reference: RunReference, *, n: int = 10000, features: str = "auto", seed: int = 0,
             progress: bool = True, log=print, inception_weights: str = "", faces: str = "auto",
             face_n: int = 1000) -> dict:
    """Generate `n` images of the referenced run, compare them with `n` real training images, write and return
    the numbers. faces: auto (datasets of faces), anime, human or none; face_n images a side are checked."""
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    if faces not in FACE_CHOICES:
        raise UserError(f"unknown --faces '{faces}': use {', '.join(FACE_CHOICES)}")
    started = time.perf_counter()
    run = reference.load()
    generator, cfg, device, root = run.generator, run.cfg, run.device, run.checkpoints_root
    data_dir = reference.data_dir
    evaluator = Evaluator(cfg, n, features, device, root, data_dir, seed, progress, log, inception_weights)
    result = {"run": cfg.run, "epoch": run.epoch, "step": run.step,
              **evaluator.measure(generator),
              **measure_faces(faces, cfg, generator, min(face_n, n), seed, data_dir, log),
              **measure_classes(cfg, generator, n, root, data_dir, device, seed, progress, log)}
    result["seconds"] = time.perf_counter() - started
    result["path"] = str(write_result(run.paths.checkpoints, result))
    return result


def result_table(result: dict) -> str:
    """The numbers as a small aligned table, the metrics labelled with their feature space."""
    space = result["features"].split(" (")[0]
    rows = []
    for name in METRICS.names:  # each registered metric whose values the result holds, in the registry's order
        metric = METRICS.spec(name)
        if all(value in result for value in metric.values):
            rows += metric.rows({value: result[value] for value in metric.values}, space)
    rows.append(("images", f"{result['n_real']:,} real, {result['n_fake']:,} generated"))
    if "face_detector" in result:
        rows.append((f"face rate ({result['face_detector']})", f"{result['face_rate_generated']:.3f} generated, "
                     f"{result['face_rate_real']:.3f} real ({result['n_faces']:,} each)"))
    if "class_accuracy" in result:
        rows.append(("class accuracy", f"{result['class_accuracy']:.3f} of {result['n_class']:,} generated images "
                     f"(classifier: {result['classifier_test_accuracy']:.3f} on real test images)"))
    rows.append(("seconds", f"{result['seconds']:.1f}"))
    width = max(len(name) for name, _ in rows) + 2
    head = f"run {result['run']}, epoch {result['epoch']}; features: {result['features']}"
    return "\n".join([head] + [f"  {name:<{width}}{value}" for name, value in rows])
