"""The README's pictures from a finished run (by default `fm32`, the set-up command's):

    python benchmarks/readme_pictures.py --run fm32 --out docs/images

fm32_real_vs_generated.png  the run's real.png beside its last epoch grid (the fixed noise), 10 and 10
fm32_sample_seed1.png       `python -m dcgan sample --run fm32 --n 64 --seed 1`
fm32_progress.gif           the run's progress.gif
fm32_progression.png        one row per epoch, the same noise
fm32_losses.png             the run's losses.png
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from dcgan.models.runs import RunReference
from dcgan.pictures.commands import sample
from dcgan.pictures.grids import grid_cells, grid_image
from dcgan.pictures.plots import progression_figure, save_figure
from dcgan.training.start import REAL_COUNT


def first_real_images(real_grid: Path, count: int) -> torch.Tensor:
    """The first `count` images of the run's real.png (REAL_COUNT real images, 8 a row), in [-1, 1]."""
    with Image.open(real_grid) as grid:
        cells = grid_cells(grid.convert("L"), REAL_COUNT, -(-REAL_COUNT // 8))[:count]
    return torch.tensor(np.stack(cells)).unsqueeze(1).float() / 127.5 - 1


def real_beside_generated(real: Path, generated: Path, epochs: int) -> Figure:
    """10 real images and the last epoch grid (10 images from the fixed noise) in the same 2 x 5 layout."""
    figure = Figure(figsize=(9, 2.4), layout="constrained")
    with Image.open(generated) as grid:
        fake = np.asarray(grid.convert("L"))
    real_image = np.asarray(grid_image(first_real_images(real, 10), 5).convert("L"))
    for axes, pixels, title in zip(figure.subplots(1, 2), (real_image, fake),
                                   ("real Fashion-MNIST", f"generated after {epochs} epochs (fixed noise)")):
        axes.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(title)
        axes.set_axis_off()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="fm32")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    out = Path(args.out)
    reference = RunReference(run=args.run)
    run = reference.load()
    paths, epochs = run.paths, run.epoch
    prefix = out / args.run
    save_figure(real_beside_generated(paths.real_grid, paths.sample_grid(epochs), epochs),
                Path(f"{prefix}_real_vs_generated.png"))
    drawn = sample(reference, n=64, seed=1)
    shutil.copyfile(drawn, f"{prefix}_sample_seed1.png")
    shutil.copyfile(paths.progress_gif, f"{prefix}_progress.gif")
    shutil.copyfile(paths.losses_plot, f"{prefix}_losses.png")
    save_figure(progression_figure(paths.epoch_grids()), Path(f"{prefix}_progression.png"))
    print(f"wrote {prefix}_*.png and .gif from run {args.run} ({epochs} epochs)")


if __name__ == "__main__":
    main()
