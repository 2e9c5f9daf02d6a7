"""Image transforms: fit to a square, pick channels, map [0, 255] <-> [-1, 1], random horizontal flips."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# Modes that hold one grey level per pixel; anything else counts as colour.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def to_8bit(image: Image.Image) -> Image.Image:
    """Bring 16-bit, 32-bit and float images to 8-bit 'L' by scaling (a plain convert would clip)."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        peak = values.max(initial=0)
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "I":  # 32-bit integers: usually a 16-bit PNG, sometimes 8-bit values
            top = 65535.0 if peak > 255 else 255.0
        else:  # "F": floats in [0, 1] or [0, 255]
            top = 1.0 if peak <= 1.0 else 255.0
        return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return image


def flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite transparent images (RGBA, LA, palette with transparency) onto white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB" if image.mode != "LA" else "L")
    return image


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """An 8-bit image with 1 ('L') or 3 ('RGB') channels, whatever mode it came in."""
    image = flatten_alpha(to_8bit(image))
    return image.convert("L" if channels == 1 else "RGB")


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """The centre square, resized to size x size (antialiased).

    Only the square is resampled (Pillow's `box`), straight to the output size: however elongated the picture,
    nothing larger than the square or the output is built."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))


def image_to_array(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """Any PIL image -> uint8 array (channels, size, size)."""
    square = fit_square(to_channels(image, channels), size)
    array = np.asarray(square, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of G's tanh output."""
    return images_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded: the exact inverse of to_signed."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1], for display and saving."""
    return images.clamp(-1.0, 1.0).add(1.0).div(2.0)


def mirror_where(images: torch.Tensor, coins: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images (N, C, H, W) whose coin (N,) is True."""
    return torch.where(coins.view(-1, 1, 1, 1), images.flip(-1), images)
