"""Small generated images of coloured shapes: a dataset that exists everywhere, for tests and smoke runs."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw_shape_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, int]:
    """One RGB image: a plain background with one large shape; returns the image and the shape's index."""
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    label = int(rng.integers(len(SHAPES)))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    radius = size * rng.uniform(0.2, 0.4)
    cx, cy = size * rng.uniform(0.35, 0.65, 2)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if SHAPES[label] == "circle":
        draw.ellipse(box, fill=colour)
    elif SHAPES[label] == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image, label


def shape_images(count: int, size: int, seed: int = 1234):
    """Yield `count` (image, label) pairs, the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield draw_shape_image(rng, size)
