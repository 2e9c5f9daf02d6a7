"""Helpers for the notebooks: show figures, images and PNG files inline, and watch training epoch by epoch (the
run a notebook's parameters name is loaded by models/runs.py's load_notebook_run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image

from ..files import png_bytes
from .plots import figure_png


def png_of(item: Any) -> bytes:
    """PNG bytes of a matplotlib Figure, a PIL image or a PNG file (a GIF file's own bytes)."""
    if isinstance(item, Figure):
        return figure_png(item)
    if isinstance(item, Image.Image):
        return png_bytes(item)
    return Path(item).read_bytes()


def show(item: Any) -> None:
    """Display a Figure, PIL image or PNG path in the notebook (as a PNG, so it renders everywhere); a GIF file
    plays as an animation."""
    from IPython.display import Image as IPythonImage
    from IPython.display import display

    data = png_of(item)
    display(IPythonImage(data=data, format="gif" if data[:3] == b"GIF" else "png"))


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

