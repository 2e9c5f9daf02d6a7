"""Animated GIFs (Pillow, no other dependency): training as an animation of the fixed-noise grids, and loops
through the latent space."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ..files import UnreadableFile, atomic_write_bytes, read_png
from ..paths import epoch_number
from .grids import grid_image
from .latent import loop_through
from .sampling import generate, noise_for

FRAME_MS = 300  # how long each epoch's frame shows
LAST_FRAME_MS = 1500  # the final grid stays a little longer before the loop starts again
MAX_FRAMES = 200  # a long run's animation keeps this many epochs, evenly spread, the first and last included
LABEL_HEIGHT = 16  # pixels of the strip above each frame that names its epoch


def labelled(image: Image.Image, label: str) -> Image.Image:
    """`image` below a white strip with `label` written on it in black."""
    framed = Image.new("RGB", (image.width, image.height + LABEL_HEIGHT), "white")
    framed.paste(image.convert("RGB"), (0, LABEL_HEIGHT))
    ImageDraw.Draw(framed).text((4, 2), label, fill="black")
    return framed


def gif_bytes(frames: list[Image.Image], durations: list[int] | int) -> bytes:
    """The frames as a looping GIF; each frame's palette is its own, so colours stay true."""
    buffer = io.BytesIO()
    first, *rest = [frame.convert("RGB") for frame in frames]
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0,
               disposal=1, optimize=False)
    return buffer.getvalue()


def spread(items: list, most: int) -> list:
    """At most `most` of `items`, evenly spread, the first and the last always kept."""
    if len(items) <= most:
        return items
    picks = torch.linspace(0, len(items) - 1, most).round().long().unique().tolist()
    return [items[index] for index in picks]


def save_progress_gif(grid_files: list[Path], path: Path) -> list[str]:
    """The per-epoch fixed-noise grids (samples/<run>/epoch_NNN.png), in epoch order, as one animation, each frame
    labelled with its epoch; written atomically (a reader never sees half a GIF). A grid that cannot be read (not
    an image, cut off, a decompression bomb, not a regular file, a link) is left out: returns a note for each."""
    frames, notes = [], []
    for grid_file in spread(sorted(grid_files, key=epoch_number), MAX_FRAMES):
        try:
            grid = read_png(grid_file)
        except UnreadableFile as reason:
            notes.append(f"note: {path.name} leaves out {grid_file.name}, which cannot be read ({reason})")
            continue
        frames.append(labelled(grid, f"epoch {epoch_number(grid_file)}"))
    if frames:
        durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
        atomic_write_bytes(path, gif_bytes(frames, durations))
    return notes


def save_images_gif(frames: list[torch.Tensor], path: Path, nrow: int, frame_ms: int = 80) -> Path:
    """Each entry of `frames` ((N, C, H, W) images in [-1, 1]) as one grid frame of a looping GIF."""
    atomic_write_bytes(path, gif_bytes([grid_image(images, nrow) for images in frames], frame_ms))
    return path


def save_interpolation_gif(generator, nz: int, path: Path, loops: int = 8, points: int = 4, steps: int = 12,
                           seed: int = 0) -> Path:
    """`loops` images side by side, each travelling by slerp through `points` noise vectors and back to its first,
    `steps` frames from one vector to the next: a GIF that loops without a jump."""
    anchors = noise_for(loops * points, nz, seed).view(loops, points, nz)
    paths = torch.stack([loop_through(anchor, steps) for anchor in anchors])  # (loops, points * steps, nz)
    frames = [generate(generator, paths[:, t]) for t in range(paths.shape[1])]
    return save_images_gif(frames, path, nrow=loops)

