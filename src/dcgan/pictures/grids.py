"""Image grids: many images in one PNG, and back (the grid's cells as separate images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from ..data.transforms import to_unit
from ..files import atomic_write_bytes, png_bytes

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


def save_grid(images: torch.Tensor, path: Path, nrow: int, min_cell: int = MIN_CELL) -> Path:
    atomic_write_bytes(path, png_bytes(grid_image(images, nrow, min_cell)))
    return path


def grid_cells(grid: Image.Image, count: int, rows: int, padding: int = 2) -> list[np.ndarray]:
    """The `count` cell images of a grid written by grid_image with `rows` rows (inverse of the layout)."""
    pixels = np.asarray(grid)
    columns = -(-count // rows)
    cell = (pixels.shape[1] - padding) // columns - padding
    cells = []
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = padding + row * (cell + padding), padding + col * (cell + padding)
        cells.append(pixels[top:top + cell, left:left + cell])
    return cells
