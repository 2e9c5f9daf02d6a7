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

MAX_WIDTH = 10.0  # inches: 1,000 px at figure_png's 100 dpi, the width of a notebook column (wider is scaled down)
LABEL_MARGIN = 1.5  # inches left of a rows_figure's images for the row labels
CELL = 1.1  # inches per image of a rows_figure; less when that many columns would pass MAX_WIDTH
MIN_CELL = 0.8  # inches: a rows_figure with more columns than fit at this size wraps each row
PANELS_PER_LINE = 2  # a curves figure's panels side by side; more wrap onto further lines


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
    """The panels side by side, two to a line, each its columns over the training steps."""
    lines = max(1, -(-len(panels) // PANELS_PER_LINE))
    figure = Figure(figsize=(MAX_WIDTH, 3.8 * lines), layout="constrained")
    grid = figure.subplots(lines, PANELS_PER_LINE, squeeze=False).ravel()
    for unused in grid[len(panels):]:
        figure.delaxes(unused)
    for axes, panel in zip(grid, panels):
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


def labelled_rows_figure(grid: Image.Image, row_labels: list[str], title: str = "", width: float = 8.0) -> Figure:
    """A grid image (as grid_image writes it) with each of its rows labelled on the left: a conditional run's
    grid, one row per class, with the class names."""
    figure = Figure(figsize=(width, (width - LABEL_MARGIN) * grid.size[1] / grid.size[0] + (0.5 if title else 0.1)),
                    layout="constrained")
    axes = figure.subplots()
    axes.imshow(np.asarray(grid), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    row_height = grid.size[1] / len(row_labels)
    axes.set_yticks([row_height * (i + 0.5) for i in range(len(row_labels))], row_labels)
    axes.set_xticks([])
    axes.tick_params(left=False)
    for side in axes.spines.values():
        side.set_visible(False)
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
    figure = Figure(figsize=(MAX_WIDTH, 1.1 * len(strips) + 0.5), layout="constrained")
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
    figure = Figure(figsize=(MAX_WIDTH, 5.4), layout="constrained")
    for axes, images, label in zip(figure.subplots(1, 2), (real, fake), ("real", "generated")):
        axes.imshow(np.asarray(grid_image(images, nrow)), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(f"{label} ({len(images)})")
        axes.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure


def rows_figure(rows: list[torch.Tensor], row_labels: list[str], column_labels: list[str], title: str) -> Figure:
    """A table of images in [-1, 1]: one labelled row per walk, interpolation or batch, labelled columns.

    At most MAX_WIDTH wide: a row with more images than fit at MIN_CELL wraps onto several lines, each line
    labelled and under its own column labels."""
    columns = len(column_labels)
    per_line = min(columns, int((MAX_WIDTH - LABEL_MARGIN) // MIN_CELL))
    lines = -(-columns // per_line)
    per_line = -(-columns // lines)  # lines as even as they can be
    cell = min(CELL, (MAX_WIDTH - LABEL_MARGIN) / per_line)
    ticks_below = 0.3 if lines > 1 else 0.0  # every line carries its column labels when rows wrap
    figure = Figure(figsize=(max(6.0, cell * per_line + LABEL_MARGIN), (cell + 0.1 + ticks_below) * len(rows) * lines
                             + 0.8), layout="constrained")
    axes_list = np.atleast_1d(figure.subplots(len(rows) * lines, 1))
    for index, axes in enumerate(axes_list):
        row, line = divmod(index, lines)
        part = slice(line * per_line, (line + 1) * per_line)
        images = rows[row][part]
        axes.imshow(np.asarray(grid_image(images, nrow=per_line)), cmap="gray", vmin=0, vmax=255,
                    interpolation="nearest")
        axes.set_yticks([])
        axes.set_ylabel(row_labels[row], rotation=0, ha="right", va="center")
        axes.set_anchor("W")  # a shorter last line starts under the others
        step = axes.get_xlim()[1] / len(images)
        shown = lines > 1 or index == len(axes_list) - 1
        axes.set_xticks([step * (i + 0.5) for i in range(len(images))], column_labels[part] if shown else [])
    figure.suptitle(title)
    return figure


def pixel_histogram(images_uint8: np.ndarray) -> Figure:
    """Histograms of stored pixel values [0, 255] and of what the networks see, mapped to [-1, 1].

    Counts are on a log scale: the background of datasets like Fashion-MNIST (mostly 0) would otherwise flatten
    every other bar; the share of pixels in the lowest bin is said in the title."""
    values = np.asarray(images_uint8).ravel()
    figure = Figure(figsize=(MAX_WIDTH, 3.8), layout="constrained")
    stored, mapped = figure.subplots(1, 2)
    counts, edges, _ = stored.hist(values, bins=64, range=(0, 255), color="tab:blue")
    stored.set(title="stored pixels (uint8)", xlabel="value", ylabel="count (log scale)", yscale="log")
    mapped.hist(values / 127.5 - 1.0, bins=64, range=(-1, 1), color="tab:orange")
    mapped.set(title="training input: x / 127.5 - 1", xlabel="value", ylabel="count (log scale)", yscale="log")
    figure.suptitle(f"{counts[0] / max(len(values), 1):.0%} of the pixels are 0-{math.ceil(edges[1]) - 1} (the "
                    "background): counts on a log scale, so the other values show")
    return figure


def pattern_figure(history: list[dict], drawn: torch.Tensor, pattern: torch.Tensor) -> Figure:
    """The toy GAN (training/toy.py): both losses over the steps, D's outputs, and the patterns G draws beside the
    target."""
    figure = Figure(figsize=(MAX_WIDTH, 3.8), layout="constrained")
    losses, outputs, bars = figure.subplots(1, 3)
    steps = [row["step"] for row in history]
    for axes, lines, ylabel in ((losses, (("loss_D", "loss_D"), ("loss_G", "loss_G")), "mean squared error"),
                                (outputs, (("D_x", "D(x)"), ("D_G_z", "D(G(z))")), "D's sigmoid output (1: real)")):
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
