"""Training as an animation (progress.gif, rewritten every epoch, across a resume) and latent-space loops and
coordinate rankings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dcgan import train
from dcgan.pictures.animation import LABEL_HEIGHT, save_interpolation_gif, spread
from dcgan.pictures.latent import loop_through, most_influential, rank_coordinates
from tests.helpers import gif_frames


def closest(frame: Image.Image, grids: list[np.ndarray]) -> int:
    """The index of the grid that the frame (below its label strip) shows, by mean absolute pixel difference."""
    pixels = np.asarray(frame, dtype=np.float32)[LABEL_HEIGHT:]
    return int(np.argmin([np.abs(pixels - grid).mean() for grid in grids]))


def test_progress_gif_holds_every_epoch_grid_in_order_and_grows_on_resume(small_config, tmp_path):
    samples = tmp_path / "samples" / "test"
    train(small_config(epochs=2), log=lambda line: None)
    train(small_config(epochs=3, resume=True), log=lambda line: None)
    frames = gif_frames(samples / "progress.gif")
    grid_files = sorted(samples.glob("epoch_*.png"))
    assert [path.name for path in grid_files] == ["epoch_000.png", "epoch_001.png", "epoch_002.png", "epoch_003.png"]
    grids = [np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) for path in grid_files]
    assert len(frames) == 4 and all(frame.size == (grids[0].shape[1], grids[0].shape[0] + LABEL_HEIGHT)
                                    for frame in frames)
    assert [closest(frame, grids) for frame in frames] == [0, 1, 2, 3]
    assert all(np.abs(np.asarray(frame, dtype=np.float32)[LABEL_HEIGHT:] - grid).mean() < 6
               for frame, grid in zip(frames, grids))  # GIF palettes change colours only slightly
    strips = [np.asarray(frame)[:LABEL_HEIGHT] for frame in frames]
    assert all((strip < 128).any() for strip in strips)  # each frame carries its label...
    assert len({strip.tobytes() for strip in strips}) == 4  # ...and the labels differ


def test_a_long_run_keeps_an_even_spread_of_frames_with_first_and_last():
    picked = spread(list(range(500)), 200)
    assert len(picked) == 200 and picked[0] == 0 and picked[-1] == 499 and picked == sorted(set(picked))
    assert spread([1, 2, 3], 200) == [1, 2, 3]


def test_a_loop_through_noise_vectors_returns_to_its_start_without_a_jump():
    points = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    path = loop_through(points, 5)
    assert path.shape == (15, 16)
    assert torch.allclose(path[0], points[0]) and torch.allclose(path[5], points[1]) and torch.allclose(path[10],
                                                                                                        points[2])
    steps = (path - path.roll(-1, dims=0)).norm(dim=1)  # the last frame steps back to the first like any other
    assert steps.max() < 2.5 * steps.median()


def test_the_interpolation_gif_has_one_frame_per_step_of_the_loop(small_config, tmp_path):
    state = train(small_config(epochs=1), log=lambda line: None)
    path = save_interpolation_gif(state.nets.generator, state.cfg.nz, tmp_path / "loop.gif", loops=3, points=2, steps=4)
    frames = gif_frames(path)
    assert len(frames) == 8
    assert len({frame.tobytes() for frame in frames}) > 1  # it moves


class OneCoordinate(nn.Module):
    """A generator that draws a grey level from z[:, 3] alone (and a little from z[:, 7])."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        level = torch.tanh(z[:, 3] + 0.1 * z[:, 7])
        return level.view(-1, 1, 1, 1).expand(-1, 1, 8, 8)


def test_the_ranking_finds_the_coordinates_that_move_the_image():
    scores = rank_coordinates(OneCoordinate(), nz=12, n=8)
    assert most_influential(scores, 2) == [3, 7]
    assert scores[[i for i in range(12) if i not in (3, 7)]].abs().max() == 0


@pytest.mark.slow
def test_on_a_trained_model_the_top_ranked_coordinates_move_new_images_more_than_the_bottom_ones(fashion_run):
    state, _ = fashion_run
    generator = state.sampler
    scores = rank_coordinates(generator, state.cfg.nz, n=8, seed=0)
    order = most_influential(scores, state.cfg.nz)
    held_out = rank_coordinates(generator, state.cfg.nz, n=8, seed=99)  # other noise: the ranking carries over
    top, bottom = held_out[order[:10]].mean(), held_out[order[-10:]].mean()
    assert top > 1.5 * bottom, (float(top), float(bottom))
