"""Train several variants of one run on the same budget and compare them: training time, FID, final images.

    rows = compare_variants(TrainConfig(data="fashion-mnist", image_size=32, epochs=2, run="v"), VARIANTS)
    print(variants_table(rows))
Each variant is the base config with a few settings changed, trained as the run <base run>-<variant> and
measured once after its last epoch (--eval-every = --epochs) in the base config's feature space.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from matplotlib.figure import Figure

from ..config import TrainConfig, flag
from ..files import read_png
from ..metrics.evaluate import measure_classes
from ..paths import root_or_default
from ..pictures.plots import labelled_rows_figure, rows_figure
from ..pictures.sampling import generate, noise_for
from .loop import say, train

# The comparison of docs/variants.md: variant name (also the run suffix) -> settings changed from the base.
VARIANTS: dict[str, dict[str, Any]] = {
    "dcgan": {},
    "label-smoothing": {"real_label": 0.9},
    "lsgan": {"loss": "lsgan"},
    "hinge": {"loss": "hinge"},
    "wgan-gp": {"loss": "wgan-gp"},
    "r1": {"loss": "r1"},
    "spectral-norm": {"spectral_norm": True},
    "ema": {"ema": 0.999},
    "diffaugment": {"diffaugment": "translation,cutout,color"},
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},
    "resnet": {"arch": "resnet"},
    "mlp": {"arch": "mlp"},
    "conditional": {"conditional": True},
    "sn-ema-ttur": {"spectral_norm": True, "ema": 0.999, "lr_g": 1e-4, "lr_d": 4e-4},
}
GRID_COUNT = 10  # images per variant in the side-by-side figure


def flags_for(settings: dict[str, Any]) -> str:
    """The train flags that set `settings`: {"loss": "hinge", "ema": 0.999} -> "--loss hinge --ema 0.999"."""
    parts = []
    for name, value in settings.items():
        if isinstance(value, bool):
            parts.append(f"--{flag(name)}" if value else f"--no-{flag(name)}")
        else:
            parts.append(f"--{flag(name)} {value:g}" if isinstance(value, float) else f"--{flag(name)} {value}")
    return " ".join(parts)


def variant_config(base: TrainConfig, name: str, settings: dict[str, Any]) -> TrainConfig:
    return dataclasses.replace(base, run=f"{base.run}-{name}", eval_every=base.epochs, **settings)


def compare_variants(base: TrainConfig, variants: dict[str, dict[str, Any]], callbacks: Iterable[Any] = (),
                     log: Callable[[str], None] = say) -> list[dict]:
    """Train every variant in turn; one row each: name, flags, epochs, training seconds, FID and final images (a
    conditional variant's also its class names and last fixed-noise grid, for class_grid_figure)."""
    rows = []
    for name, settings in variants.items():
        cfg = variant_config(base, name, settings)
        log(f"variant {name}: {flags_for(settings) or 'the base run'}")
        state = train(cfg, callbacks, log)
        epochs = [row for row in state.history if row["kind"] == "epoch"]
        row = {"variant": name, "flags": flags_for(settings), "epochs": state.epoch,
               "seconds": sum(item["seconds"] for item in epochs), "fid": epochs[-1]["fid"],
               "features": state.setup.evaluator.label, "run": state.paths.name, "grid": state.sample_path,
               "classes": class_names(state) if state.cfg.conditional else (),
               "images": generate(state.sampler, noise_for(GRID_COUNT, cfg.nz, cfg.seed))}
        row.update(measure_classes(state.cfg, state.sampler, base.eval_n,
                                   root_or_default(cfg.checkpoints_dir, "checkpoints"), cfg.data_dir,
                                   state.setup.device, cfg.seed, cfg.progress, log))
        rows.append(row)
    return rows


def class_names(state) -> tuple[str, ...]:
    """The names of a conditional run's classes in label order (their numbers where the data names none)."""
    return state.setup.data.classes or tuple(str(label) for label in range(state.cfg.classes))


def variants_table(rows: list[dict]) -> str:
    """A Markdown table of the rows, best FID first marked in bold."""
    best = min(row["fid"] for row in rows)
    lines = ["| variant | flags | epochs | time (s) | FID |", "|---|---|---:|---:|---:|"]
    for row in rows:
        fid = f"**{row['fid']:.1f}**" if row["fid"] == best else f"{row['fid']:.1f}"
        flags = f"`{row['flags']}`" if row["flags"] else "(base)"
        extra = f" (class accuracy {row['class_accuracy']:.3f})" if "class_accuracy" in row else ""
        lines.append(f"| {row['variant']}{extra} | {flags} | {row['epochs']} | {row['seconds']:.0f} | {fid} |")
    return "\n".join(lines)


def variants_figure(rows: list[dict], title: str = "") -> Figure:
    """Each variant's images from the same noise, one labelled row per variant with its FID."""
    labels = [f"{row['variant']}\nFID {row['fid']:.1f}" for row in rows]
    return rows_figure([row["images"] for row in rows], labels, [""] * GRID_COUNT,
                       title or f"{epochs_each(rows[0]['epochs'])}; FID ({rows[0]['features'].split(' (')[0]})")


def epochs_each(epochs: int) -> str:
    """The budget in the figure's title: 1 epoch each, 2 epochs each."""
    return f"{epochs} epoch{'' if epochs == 1 else 's'} each"


def class_grid_figure(row: dict) -> Figure:
    """A conditional variant's last fixed-noise grid (one row per class, each column one noise vector), each row
    labelled with its class name."""
    title = f"{row['variant']}: one row per class, each column one noise vector"
    if "class_accuracy" in row:
        title += f"\nclass accuracy {row['class_accuracy']:.3f} (the share the classifier puts in the class asked for)"
    return labelled_rows_figure(read_png(row["grid"]), list(row["classes"]), title)
