"""Face rate: the share of images in which a face detector (data.faces) finds at least one face."""

from __future__ import annotations

import torch
from PIL import Image

from ..data.faces import Detector
from ..data.transforms import to_uint8

DETECT_SIZE = 256  # generated images are upscaled to this before detection (real ones too, for a fair rate)


def to_pil(image: torch.Tensor, size: int = DETECT_SIZE) -> Image.Image:
    """One image in [-1, 1], (C, H, W) -> an RGB/L PIL image upscaled to `size` x `size`."""
    pixels = to_uint8(image).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    return picture.resize((size, size), Image.Resampling.BICUBIC)


def face_rate(images: torch.Tensor, detector: Detector) -> float:
    """The share of images (N, C, H, W in [-1, 1]) in which `detector` finds at least one face."""
    if len(images) == 0:
        raise ValueError("face_rate needs at least one image")
    return sum(bool(detector(to_pil(image))) for image in images) / len(images)
