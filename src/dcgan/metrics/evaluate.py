"""`dcgan evaluate`: compare a run's generated images with real ones in one feature space (features.py): the
metrics its --eval-metrics chooses (by default FID, KID, precision and recall), each a Metric registered in
registry.py's METRICS; and for face datasets the face rate, for conditional runs the class accuracy. Beside them, the
same metrics for other real images against the real set (the best values n allows, "real_vs_real_...") and the
numbers recorded for the README's runs where they were measured in the same space (recorded.py).

    result = evaluate(RunReference(run="fm32"), n=10000)   # also: python -m dcgan evaluate --run fm32
writes checkpoints/<run>/eval_<epoch>.json and returns the same numbers as a dict.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data.cache import real_images_for
from ..data.datasets import has_classifier
from ..data.faces import face_detector, faces_for_dataset
from ..data.sources import named
from ..errors import UserError
from ..models.conditional import cycling_labels
from ..models.runs import RunReference
from ..paths import root_or_default
from ..pictures.sampling import generate, noise_for
from ..registry import METRICS
from .classifier import load_or_train_classifier
from .face_rate import face_rate
from .features import REAL_VS_REAL, Evaluator, write_result
from .metric import Measured, Row
from .recorded import recorded_for

FACE_CHOICES = ("auto", "anime", "human", "none")


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
    why = f"class accuracy needs a classifier of {named(cfg.data).title}"
    classifier, test_accuracy = load_or_train_classifier(cfg.data, checkpoints_root,
                                                         root_or_default(data_dir or cfg.data_dir, "data"), device,
                                                         progress, log, why)
    return {"class_accuracy": class_accuracy(generator, classifier, cfg.nz, n, cfg.classes, seed, device),
            "classifier_test_accuracy": test_accuracy, "n_class": n}


def evaluate(reference: RunReference, *, n: int = 10000, features: str = "auto", seed: int = 0,
             progress: bool = True, log=print, inception_weights: str = "", faces: str = "auto",
             face_n: int = 1000, real_against_real: bool = True) -> dict:
    """Generate `n` images of the referenced run, compare them with `n` real training images, write and return
    the numbers. faces: auto (datasets of faces), anime, human or none; face_n images a side are checked.
    real_against_real: also measure n other real images against the real set, the scale of the numbers (n more
    images through the feature network: next to nothing for the classifier, as long again as the real set for
    Inception on a CPU)."""
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    if faces not in FACE_CHOICES:
        raise UserError(f"unknown --faces '{faces}': use {', '.join(FACE_CHOICES)}")
    started = time.perf_counter()
    run = reference.load()
    generator, cfg, device, root = run.generator, run.cfg, run.device, run.checkpoints_root
    data_dir = reference.data_dir
    evaluator = Evaluator(cfg, n, features, device, root, data_dir, seed, progress, log, inception_weights)
    result = {"run": cfg.run, "epoch": run.epoch, "step": run.step, "data": cfg.data, "image_size": cfg.image_size,
              **evaluator.measure(generator),
              **(evaluator.real_against_real() if real_against_real else {}),
              **measure_faces(faces, cfg, generator, min(face_n, n), seed, data_dir, log),
              **measure_classes(cfg, generator, n, root, data_dir, device, seed, progress, log)}
    result["seconds"] = time.perf_counter() - started
    result["path"] = str(write_result(run.paths.checkpoints, result))
    return result


def references(result: dict) -> list[tuple[str, dict, int]]:
    """(label, values, images a side) of the reference points the result's numbers are shown with: real against
    real (what a generator drawing the data itself would score), then the recorded runs of the same feature space,
    dataset and size."""
    found = []
    if f"{REAL_VS_REAL}n" in result:
        count = int(result[f"{REAL_VS_REAL}n"])
        values = {name.removeprefix(REAL_VS_REAL): value for name, value in result.items()
                  if name.startswith(REAL_VS_REAL)}
        found.append((f"real vs real, n = {count:,}", values, count))
    return found + [(f"{run.label}, n = {run.n:,}", run.values, run.n) for run in recorded_for(result)]


def metric_rows(result: dict, space: str) -> list[Row]:
    """Each registered metric whose values the result holds, in the registry's order, each line followed by the
    same line of every reference point that has the metric (indented)."""
    shown = references(result)
    rows = []
    for name in METRICS.names:
        metric = METRICS.spec(name)
        if not all(value in result for value in metric.values):
            continue
        own = metric.rows({value: result[value] for value in metric.values},
                          Measured(space, min(result["n_real"], result["n_fake"])))
        under = [(label, metric.rows({value: values[value] for value in metric.values}, Measured(space, count)))
                 for label, values, count in shown if all(value in values for value in metric.values)]
        for index, row in enumerate(own):
            rows += [row] + [(f"  {label}", lines[index][1]) for label, lines in under if index < len(lines)]
    return rows


def result_table(result: dict) -> str:
    """The numbers as a small aligned table, the metrics labelled with their feature space and shown with their
    reference points (real against real: the best n allows; recorded runs of the same space)."""
    space = result["features"].split(" (")[0]
    rows = metric_rows(result, space)
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
    note = []
    if f"{REAL_VS_REAL}n" in result:
        note = ["real vs real: other real images against the same real set, in the same features: what a generator "
                "drawing the data itself would score at this n"]
    return "\n".join([head] + [f"  {name:<{width}}{value}" for name, value in rows] + note)
