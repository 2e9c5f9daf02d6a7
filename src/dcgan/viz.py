"""Pictures: image grids (PNG) and the training curves (loss_D, loss_G, D(x), D(G(z)))."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from matplotlib.figure import Figure
from PIL import Image
from torchvision.utils import make_grid

from .files import atomic_write_bytes
from .transforms import to_unit

MIN_CELL = 64  # grids upscale small images (nearest neighbour) until each cell is at least this wide


def grid_image(images: torch.Tensor, nrow: int, min_cell: int = MIN_CELL) -> Image.Image:
    """(N, C, H, W) images in [-1, 1] -> one PIL image, `nrow` images per row, 2 px white gaps.

    Cells smaller than `min_cell` are enlarged by a whole factor with nearest neighbour, so pixels stay sharp.
    """
    images = to_unit(images.detach().float().cpu())
    scale = max(1, -(-min_cell // images.shape[-1]))
    if scale > 1:
        images = images.repeat_interleave(scale, dim=-1).repeat_interleave(scale, dim=-2)
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)  # (C or 3, H', W')
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if images.shape[1] == 1 else pixels, "L" if images.shape[1] == 1 else "RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_grid(images: torch.Tensor, path: Path, nrow: int, min_cell: int = MIN_CELL) -> Path:
    atomic_write_bytes(path, png_bytes(grid_image(images, nrow, min_cell)))
    return path


def history_figure(history: list[dict], title: str = "") -> Figure:
    """Two panels over training steps: the losses, and D's mean outputs on real and generated images."""
    rows = [row for row in history if row["kind"] == "step"] or [row for row in history if row["kind"] == "epoch"]
    steps = [row["step"] for row in rows]
    figure = Figure(figsize=(11, 4), layout="constrained")
    losses, outputs = figure.subplots(1, 2)
    losses.plot(steps, [row["loss_D"] for row in rows], label="loss_D")
    losses.plot(steps, [row["loss_G"] for row in rows], label="loss_G")
    losses.set(title="Losses", xlabel="step", ylabel="BCE")
    outputs.plot(steps, [row["D_x"] for row in rows], label="D(x): real")
    outputs.plot(steps, [row["D_G_z"] for row in rows], label="D(G(z)): generated")
    outputs.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    outputs.set(title="Discriminator outputs", xlabel="step", ylabel="mean probability of 'real'", ylim=(0, 1))
    for axes in (losses, outputs):
        axes.legend()
        axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def save_history_figure(history: list[dict], path: Path, title: str = "") -> Path:
    buffer = io.BytesIO()
    history_figure(history, title).savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
    return path
