"""Memorization check: does G copy its training images?

Each of M generated images is matched with its nearest training image, in the evaluation feature space and in
pixel space. The same distances measured from M real images the model never saw (the test split; for data
without one, training images matched to the other training images) are the baseline: a model that copies
lands well below it.

    report = nearest(RunReference(run="fm32"))          # also: python -m dcgan nearest --run fm32
writes samples/<run>/nearest.png and checkpoints/<run>/nearest_<epoch>.json.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..data.cache import ImageData, load_image_data
from ..data.sources import named
from ..data.transforms import to_signed
from ..errors import UserError
from ..files import atomic_write_text
from ..models.runs import RunReference
from ..pictures.plots import rows_figure, save_figure
from ..pictures.sampling import generate, noise_for
from .features import extract, feature_model


def nearest_neighbours(queries: torch.Tensor, reference_chunks: Iterable[torch.Tensor],
                       exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query's nearest reference row (Euclidean), the reference read chunk by chunk.
    exclude_self: the queries are the reference's first rows and must not match themselves."""
    best = torch.full((len(queries),), math.inf)
    index = torch.zeros(len(queries), dtype=torch.long)
    rows, start = torch.arange(len(queries)), 0
    for part in reference_chunks:
        distances = torch.cdist(queries.float(), part.float())
        if exclude_self:
            own = rows - start
            mask = (own >= 0) & (own < len(part))
            distances[rows[mask], own[mask]] = math.inf
        value, where = distances.min(dim=1)
        better = value < best
        best[better], index[better] = value[better], where[better] + start
        start += len(part)
    return best, index


def image_chunks(data: ImageData, chunk: int = 4096) -> Iterator[torch.Tensor]:
    """The images in [-1, 1], (n, C, H, W), `chunk` at a time, straight from the uint8 cache."""
    for start in range(0, len(data), chunk):
        yield to_signed(torch.from_numpy(np.array(data.images[start:start + chunk])))


def images_at(data: ImageData, indices) -> torch.Tensor:
    return to_signed(torch.from_numpy(data.images[np.asarray(indices)]))


def distance_stats(distances: torch.Tensor) -> dict[str, float]:
    values = distances.double()
    return {"min": float(values.min()), "p05": float(values.quantile(0.05)), "median": float(values.median()),
            "mean": float(values.mean())}


def baseline_images(cfg, train: ImageData, m: int, data_root, seed: int) -> tuple[torch.Tensor, bool, str]:
    """(M real images to match like the generated ones, whether they are the first training images, description)."""
    spec = named(cfg.data)
    if spec is not None and spec.test_split:
        test = load_image_data(cfg.data, cfg.image_size, cfg.channels, data_root, cfg.download, split="test",
                               progress=False)
        return test.sample(min(m, len(test)), seed), False, "test images"
    return images_at(train, np.arange(min(m, len(train)))), True, "training images (to the other training images)"


def nearest(reference: RunReference, *, n: int = 1000, features: str = "auto", show: int = 8, seed: int = 0,
            progress: bool = True, log=print, inception_weights: str = "") -> dict:
    """Match `n` generated images of the referenced run and `n` baseline real images with the training set; write
    and return stats."""
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    started = time.perf_counter()
    run = reference.load()
    generator, cfg, root, data_root, where = run.generator, run.cfg, run.checkpoints_root, run.data_root, run.device
    try:
        model, label = feature_model(features, cfg.data, root, data_root, where, progress, log, inception_weights)
    except UserError as error:
        if features != "auto":
            raise
        log(f"pixel space only: {error}")
        model, label = None, "none"
    train = load_image_data(cfg.data, cfg.image_size, cfg.channels, data_root, cfg.download,
                            progress=progress).head(cfg.limit)
    fake = generate(generator, noise_for(n, cfg.nz, seed + 1))
    real, real_is_train, real_label = baseline_images(cfg, train, n, data_root, seed)

    result = {"run": cfg.run, "epoch": run.epoch, "features": label, "n_generated": len(fake),
              "n_baseline": len(real), "baseline": real_label, "n_train": len(train)}
    matches = {}
    if model is not None:
        train_features = torch.cat([extract(model, part, where) for part in image_chunks(train)])
        result["feature"], matches["feature"] = compare_in_space(
            extract(model, fake, where), extract(model, real, where), lambda: train_features.split(8192),
            real_is_train)
    # pixels: RMS difference per value in [-1, 1] units, comparable across image sizes
    result["pixel"], matches["pixel"] = compare_in_space(
        fake.flatten(1), real.flatten(1), lambda: (part.flatten(1) for part in image_chunks(train)), real_is_train,
        scale=1 / math.sqrt(fake[0].numel()))
    result["seconds"] = time.perf_counter() - started
    paths = run.paths
    result["figure"] = str(save_figure(closest_figure(fake, train, matches, show, cfg.run),
                                       paths.samples / "nearest.png"))
    result["path"] = str(paths.checkpoints / f"nearest_{result['epoch']:03d}.json")
    atomic_write_text(Path(result["path"]), json.dumps(result, indent=2) + "\n")
    return result


def compare_in_space(fake: torch.Tensor, real: torch.Tensor, reference_chunks, real_is_train: bool,
                     scale: float = 1.0) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    """Nearest-training-image distances of generated vs baseline images in one space: (statistics,
    (generated distances, indices of their nearest training images))."""
    fake_distance, fake_index = nearest_neighbours(fake, reference_chunks())
    real_distance, _ = nearest_neighbours(real, reference_chunks(), exclude_self=real_is_train)
    fake_distance, real_distance = fake_distance * scale, real_distance * scale
    threshold = float(real_distance.quantile(0.01))
    stats = {"generated": distance_stats(fake_distance), "baseline": distance_stats(real_distance),
             "median_ratio": float(fake_distance.median() / real_distance.median()),
             "share_closer_than_baseline_p01": float((fake_distance < threshold).double().mean())}
    return stats, (fake_distance, fake_index)


def closest_figure(fake: torch.Tensor, train: ImageData, matches: dict, show: int, run: str):
    """The `show` generated images closest to a training image (in feature space where measured), each with its
    nearest training image in each space."""
    ranking = "feature" if "feature" in matches else "pixel"
    distance = matches[ranking][0]
    chosen = distance.argsort()[:show]
    rows = [fake[chosen]] + [images_at(train, matches[space][1][chosen]) for space in matches]
    labels = ["generated"] + [f"nearest by\n{space}s" for space in matches]
    return rows_figure(rows, labels, [f"{float(distance[i]):.2f}" for i in chosen],
                       f"{run}: the generated images closest to the training set ({ranking} distance below)")


def nearest_table(result: dict) -> str:
    """Median (5th percentile) nearest-training-image distances of generated and baseline images, per space."""
    lines = [f"run {result['run']}, epoch {result['epoch']}: {result['n_generated']:,} generated images and "
             f"{result['n_baseline']:,} {result['baseline']}, each matched with the nearest of "
             f"{result['n_train']:,} training images",
             f"  {'distance to nearest':<22}{'generated':>18}{'baseline':>18}{'ratio':>8}{'closer':>8}"]
    for space, title in (("feature", "features"), ("pixel", "pixels (RMS)")):
        if space not in result:
            continue
        numbers = result[space]
        both = [f"{numbers[side]['median']:.3f} ({numbers[side]['p05']:.3f})" for side in ("generated", "baseline")]
        lines.append(f"  {title:<22}{both[0]:>18}{both[1]:>18}{numbers['median_ratio']:>8.2f}"
                     f"{numbers['share_closer_than_baseline_p01']:>8.1%}")
    lines += [f"  features: {result['features']}; distances: median (5th percentile)",
              "  ratio: generated median / baseline median, well below 1 means copying; closer: share of generated "
              "images nearer to a training image than 99 % of the baseline images are"]
    return "\n".join(lines)
