"""The commands that draw from a referenced run (models/runs.py): `dcgan sample`, a grid of new images, and
`dcgan export`, G's folder with its sample grid and model card."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from ..config import TrainConfig
from ..errors import UserError
from ..models.conditional import class_rows
from ..models.export import check_out, export_settings, write_export_folder
from ..models.parts import importable, parameter_count
from ..models.runs import RunReference
from ..registry import is_object_name
from .grids import save_grid
from .model_card import EXPORT_FILES, card_files
from .sampling import generate, noise_for


def sample(reference: RunReference, *, n: int = 64, seed: int = 0, nrow: int = 0, class_index: int | None = None,
           out: Path | str = "") -> Path:
    """`dcgan sample`: `n` images of the referenced run in one PNG grid, `nrow` a row (0: about square; a
    conditional run: one row per class, or only class `class_index`); the same seed draws the same images.
    Writes `out` (default: samples/<run>/sample_seed<seed>.png) and returns its path."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    run = reference.load()
    labels, per_row = sample_labels(run.cfg, n, class_index)
    images = generate(run.generator, noise_for(n, run.cfg.nz, seed), labels=labels)
    name = f"sample_seed{seed}" + ("" if class_index is None else f"_class{class_index}")
    path = Path(out) if out else run.paths.samples / f"{name}.png"
    save_grid(images, path, nrow=nrow or per_row or math.ceil(math.sqrt(n)))
    return path


def sample_labels(cfg: TrainConfig, n: int, class_index: int | None) -> tuple[torch.Tensor | None, int]:
    """(labels, images per row) for `sample`: all of class K, or one row per class; (None, 0) when unconditional."""
    if not cfg.conditional:
        if class_index is not None:
            raise UserError(f"--class needs a conditional run; run '{cfg.run}' was trained without --conditional")
        return None, 0
    if class_index is None:
        per_class = math.ceil(n / cfg.classes)
        return class_rows(cfg.classes, per_class)[:n], per_class
    if not 0 <= class_index < cfg.classes:
        raise UserError(f"--class {class_index} is out of range: run '{cfg.run}' has classes 0 to {cfg.classes - 1}")
    return torch.full((n,), class_index), 0


def export(reference: RunReference, out: Path | str, say: Callable[[str], None] = print) -> Path:
    """`dcgan export`: G of the referenced checkpoint (reference.weights: its moving average or its own weights)
    as the folder `out`, with samples.png and the model card; returns `out`. An earlier export there is replaced
    whole (models/export.py's write_export_folder)."""
    if reference.is_export:
        raise UserError(f"--checkpoint {reference.checkpoint} is a folder: export reads a checkpoint file (.pt)")
    out = Path(out)
    check_out(out, EXPORT_FILES)
    run = reference.load()
    about = {"run": run.cfg.run, "data": run.cfg.data, "epoch": run.epoch, "step": run.step, "weights": run.weights}
    if is_object_name(run.cfg.generator):
        about["parameters"] = parameter_count(run.generator)
        if not importable(run.cfg.generator):
            say(f"note: G's class {run.cfg.generator} was defined in a notebook or a script: it cannot be imported "
                "again, so keep its code beside the export (its model card says so)")
    write_export_folder(out, run.generator, export_settings(run.cfg, about), card_files(run, about))
    say(f"exported {run.weights} G of run '{run.cfg.run}' (epoch {run.epoch}) to {out}: {', '.join(EXPORT_FILES)}")
    return out
