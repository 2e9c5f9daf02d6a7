"""Matplotlib figures for notebooks and run folders: training curves, progression, real vs generated,
latent walks, pixel histograms. Figures are built without pyplot, so they work headless."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from ..files import atomic_write_bytes, read_png
from .grids import grid_cells, grid_image


@dataclass
class Panel:
    """One panel of a curves figure: `lines` are (column, legend label) pairs drawn from `rows` over their step."""

    title: str
    ylabel: str
    rows: list[dict]
    lines: list[tuple[str, str]] = field(default_factory=list)
    probabilities: bool = False  # values in [0, 1], with a dashed line at 0.5 (D's outputs)
    markers: bool = False  # a few points (evaluations) rather than a curve


def curves_figure(panels: list[Panel], title: str = "") -> Figure:
    """The panels side by side, each its columns over the training steps."""
    figure = Figure(figsize=(5.5 * max(len(panels), 2), 4), layout="constrained")
    for axes, panel in zip(figure.subplots(1, len(panels), squeeze=False)[0] if panels else [], panels):
        steps = [row["step"] for row in panel.rows]
        for column, label in panel.lines:
            axes.plot(steps, [row.get(column, math.nan) for row in panel.rows], "o-" if panel.markers else "-",
                      label=label)
        axes.set(title=panel.title, xlabel="step", ylabel=panel.ylabel)
        if panel.probabilities:
            axes.axhline(0.5, color="grey", linestyle="--", linewidth=1)
            axes.set(ylim=(0, 1))
        axes.legend()
        axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def image_figure(image: Image.Image, title: str = "", width: float = 8.0) -> Figure:
    """A PIL image shown at its own aspect ratio with a title, pixels kept sharp."""
    height = width * image.size[1] / image.size[0] + (0.4 if title else 0)
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots()
    axes.imshow(np.asarray(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes.set_axis_off()
    if title:
        axes.set_title(title)
    return figure


def progression_figure(grid_files: list[Path], cells: int = 10, cell_rows: int = 2, max_rows: int = 12) -> Figure:
    """One row per epoch grid file (epoch_000.png, ...), its `cells` images side by side: how G improved.

    With more than `max_rows` files, evenly spaced epochs are shown, always the first and the last.
    """
    grid_files = sorted(grid_files)
    if len(grid_files) > max_rows:
        picks = np.linspace(0, len(grid_files) - 1, max_rows).round().astype(int)
        grid_files = [grid_files[i] for i in sorted(set(picks))]
    strips = [side_by_side(grid_cells(read_png(path), cells, cell_rows)) for path in grid_files]
    figure = Figure(figsize=(12, 1.3 * len(strips) + 0.5), layout="constrained")
    axes_list = np.atleast_1d(figure.subplots(len(strips), 1))
    for axes, strip, path in zip(axes_list, strips, grid_files):
        axes.imshow(strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_ylabel(path.stem.replace("epoch_", "epoch "), rotation=0, ha="right", va="center")
    figure.suptitle("The same fixed noise after each epoch")
    return figure


def side_by_side(images: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Images of equal size in one row, separated by white columns."""
    white = np.full((images[0].shape[0], gap, *images[0].shape[2:]), 255, dtype=images[0].dtype)
    return np.concatenate([part for image in images for part in (image, white)][:-1], axis=1)


def comparison_figure(real: torch.Tensor, fake: torch.Tensor, nrow: int = 0, title: str = "") -> Figure:
    """Real and generated images (both in [-1, 1]) side by side, same count and layout (nrow 0: square)."""
    nrow = nrow or math.ceil(math.sqrt(len(real)))
    figure = Figure(figsize=(12, 6.4), layout="constrained")
    for axes, images, label in zip(figure.subplots(1, 2), (real, fake), ("real", "generated")):
        axes.imshow(np.asarray(grid_image(images, nrow)), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(f"{label} ({len(images)})")
        axes.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure


def rows_figure(rows: list[torch.Tensor], row_labels: list[str], column_labels: list[str], title: str) -> Figure:
    """A table of images in [-1, 1]: one labelled row per walk, interpolation or batch, labelled columns."""
    figure = Figure(figsize=(max(6.0, 1.1 * len(column_labels) + 1.5), 1.2 * len(rows) + 0.8), layout="constrained")
    axes_list = np.atleast_1d(figure.subplots(len(rows), 1))
    for axes, images, label in zip(axes_list, rows, row_labels):
        axes.imshow(np.asarray(grid_image(images, nrow=len(images))), cmap="gray", vmin=0, vmax=255,
                    interpolation="nearest")
        axes.set_yticks([])
        axes.set_ylabel(label, rotation=0, ha="right", va="center")
        cell = axes.get_xlim()[1] / len(images)
        axes.set_xticks([cell * (i + 0.5) for i in range(len(images))], column_labels if axes is axes_list[-1] else [])
    figure.suptitle(title)
    return figure


def pixel_histogram(images_uint8: np.ndarray) -> Figure:
    """Histograms of stored pixel values [0, 255] and of what the networks see, mapped to [-1, 1]."""
    values = np.asarray(images_uint8).ravel()
    figure = Figure(figsize=(11, 3.5), layout="constrained")
    stored, mapped = figure.subplots(1, 2)
    stored.hist(values, bins=64, range=(0, 255), color="tab:blue")
    stored.set(title="stored pixels (uint8)", xlabel="value", ylabel="count")
    mapped.hist(values / 127.5 - 1.0, bins=64, range=(-1, 1), color="tab:orange")
    mapped.set(title="training input: x / 127.5 - 1", xlabel="value", ylabel="count")
    return figure


def pattern_figure(history: list[dict], drawn: torch.Tensor, pattern: torch.Tensor) -> Figure:
    """The toy GAN (training/toy.py): both losses over the steps, D's outputs, and the patterns G draws beside the
    target."""
    figure = Figure(figsize=(13, 3.6), layout="constrained")
    losses, outputs, bars = figure.subplots(1, 3)
    steps = [row["step"] for row in history]
    for axes, lines, ylabel in ((losses, (("loss_D", "loss_D"), ("loss_G", "loss_G")), "mean squared error"),
                                (outputs, (("D_x", "D(x)"), ("D_G_z", "D(G(z))")), "D's output")):
        for name, label in lines:
            axes.plot(steps, [row[name] for row in history], label=label)
        axes.set(xlabel="step", ylabel=ylabel)
        axes.legend()
        axes.grid(alpha=0.3)
    losses.set_title("Losses")
    outputs.set(title="D's outputs (0.5: it cannot tell)", ylim=(0, 1))
    outputs.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    places = np.arange(len(pattern))
    bars.bar(places - 0.2, pattern.numpy(), width=0.4, color="lightgrey", label="pattern")
    bars.bar(places + 0.2, drawn.mean(0).numpy(), width=0.4, yerr=drawn.std(0).numpy(), color="tab:blue",
             label=f"G, mean of {len(drawn)}")
    bars.set(title="What G draws", xticks=places, ylim=(0, 1.3), xlabel="position in the pattern", ylabel="value")
    bars.legend(loc="upper center", ncol=2)
    return figure


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Figure, path: Path, dpi: int = 100) -> Path:
    atomic_write_bytes(path, figure_png(figure, dpi))
    return path
