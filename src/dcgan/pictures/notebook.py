"""Helpers for the notebooks: show figures, images, PNG and GIF files and Markdown tables inline, and watch training
epoch by epoch (the run a notebook's parameters name is loaded by models/runs.py's load_notebook_run)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image, ImageSequence

from ..files import png_bytes
from .plots import figure_png

# JupyterLab shows an image at its own pixel size, up to the column's width (about 1,000 px): small images are
# enlarged for display by a whole factor (nearest neighbour, pixels stay sharp) to at most this size
DISPLAY_WIDTH, DISPLAY_HEIGHT = 800, 800


def png_of(item: Any) -> bytes:
    """PNG bytes of a matplotlib Figure, a PIL image or a PNG file (a GIF file's own bytes)."""
    if isinstance(item, Figure):
        return figure_png(item)
    if isinstance(item, Image.Image):
        return png_bytes(item)
    return Path(item).read_bytes()


def show(item: Any) -> None:
    """Display a Figure, PIL image or PNG path in the notebook (as a PNG, so it renders everywhere); a GIF file
    plays as an animation. Small images are shown enlarged (see display_bytes); files are left as they are."""
    from IPython.display import Image as IPythonImage
    from IPython.display import display

    data = display_bytes(png_of(item))
    display(IPythonImage(data=data, format="gif" if data[:3] == b"GIF" else "png"))


def show_table(markdown: str) -> None:
    """Display Markdown (a table) rendered, rather than as its source text."""
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def display_scale(width: int, height: int) -> int:
    """The largest whole factor that keeps an image within DISPLAY_WIDTH x DISPLAY_HEIGHT; 1 when it fills them
    already (never smaller)."""
    return max(1, min(DISPLAY_WIDTH // width, DISPLAY_HEIGHT // height))


def display_bytes(data: bytes) -> bytes:
    """PNG or GIF bytes enlarged by display_scale with nearest neighbour: every frame of a GIF, with its duration
    and the loop kept. Images that are large enough come back as they are."""
    with Image.open(io.BytesIO(data)) as image:
        factor = display_scale(*image.size)
        if factor == 1:
            return data
        size = (image.width * factor, image.height * factor)
        if image.format != "GIF":
            return png_bytes(image.resize(size, Image.Resampling.NEAREST))
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frames.append(frame.convert("RGB").resize(size, Image.Resampling.NEAREST))
            durations.append(frame.info.get("duration", 0))
        loop = {"loop": image.info["loop"]} if "loop" in image.info else {}
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, disposal=1,
                   optimize=False, **loop)
    return buffer.getvalue()


class ShowEpochGrids:
    """A training callback (see training.callbacks) that shows the fixed-noise grid inline before training and
    after every epoch, below the epoch's line. `state` is the run's TrainState."""

    def __init__(self, show_image: Callable[[Any], None] = show, say: Callable[[str], None] = print):
        self.show_image, self.say = show_image, say

    def on_train_start(self, state: Any) -> None:
        if state.epoch == 0 and state.sample_path is not None:
            self.say("before training (epoch 0):")
            self.show_image(state.sample_path)

    def on_epoch_end(self, state: Any) -> None:  # (the run's log has just printed the epoch's line, every statistic)
        self.show_image(state.sample_path)

