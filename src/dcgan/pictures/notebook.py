"""Helpers for the notebooks: show figures, images and PNG files inline, watch training epoch by epoch, and load
the run a notebook's parameters name (or the latest one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image

from ..errors import UserError
from ..files import png_bytes
from ..paths import latest_run, root_or_default
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
    after every epoch, with the epoch's numbers. `state` is the run's TrainState."""

    def __init__(self, show_image: Callable[[Any], None] = show, say: Callable[[str], None] = print):
        self.show_image, self.say = show_image, say

    def on_train_start(self, state: Any) -> None:
        if state.epoch == 0 and state.sample_path is not None:
            self.say("before training (epoch 0):")
            self.show_image(state.sample_path)

    def on_epoch_end(self, state: Any) -> None:
        row = state.last_row
        self.say(f"epoch {state.epoch}: loss_D {row['loss_D']:.3f}, loss_G {row['loss_G']:.3f}, "
                 f"D(x) {row['D_x']:.2f}, D(G(z)) {row['D_G_z']:.2f}")
        self.show_image(state.sample_path)


def load_notebook_run(run: str, checkpoint: str = "", checkpoints_dir: str = "", device: str = "auto",
                      say: Callable[[str], None] = print):
    """`load_run` for a notebook's parameters (G, its config, the checkpoint). When `run` has no checkpoint, the
    run written most recently is loaded instead, and said; mistakes are told in the parameters' words."""
    from .sampling import load_run

    if checkpoint:
        if not Path(checkpoint).exists():
            raise UserError(f'no checkpoint at {checkpoint}: set checkpoint = "..." to an existing file or exported '
                            'folder, or checkpoint = "" to load a run by its name')
        return load_run("", checkpoints_dir, checkpoint, device)
    root = root_or_default(checkpoints_dir, "checkpoints")
    if not (root / run / "last.pt").is_file():
        found = latest_run(root)
        if found is None:
            raise UserError(f'no trained run in {root}: train one first (notebook 02, or python -m dcgan train), '
                            'or set checkpoints_dir = "..." to the folder that holds your runs')
        say(f"run '{run}' has no checkpoint in {root}: using '{found}', the run written most recently there "
            '(set run = "..." to choose another)')
        run = found
    return load_run(run, checkpoints_dir, "", device)
