import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.pictures.grids import grid_image, save_grid
from dcgan.pictures.plots import save_figure
from dcgan.training.history import history_figure, history_row


def constant_images(values, channels=1, size=32):
    return torch.stack([torch.full((channels, size, size), v) for v in values])


def test_ten_images_make_a_two_by_five_grid_in_order(tmp_path):
    levels = torch.linspace(-1, 1, 10)
    path = save_grid(constant_images(levels), tmp_path / "grid.png", nrow=5)
    grid = np.asarray(Image.open(path))
    cell, pad = 64, 2  # 32 px images are enlarged twice; 2 px gaps around every cell
    assert grid.shape == (2 * cell + 3 * pad, 5 * cell + 6 * pad)
    for index, level in enumerate(levels):
        row, col = divmod(index, 5)
        top, left = pad + row * (cell + pad), pad + col * (cell + pad)
        patch = grid[top:top + cell, left:left + cell]
        expected = round((level.item() + 1) / 2 * 255)
        assert np.all(np.abs(patch.astype(int) - expected) <= 1), (index, patch.mean(), expected)
    assert np.all(grid[0, :] == 255)  # white gaps


def test_rgb_grids_and_large_images_are_not_enlarged():
    grid = grid_image(constant_images([0.0] * 4, channels=3, size=64), nrow=2)
    assert grid.mode == "RGB" and grid.size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)


def test_nearest_neighbour_enlargement_keeps_pixels_sharp():
    image = torch.full((1, 1, 32, 32), -1.0)
    image[..., ::2] = 1.0  # alternating black and white columns
    grid = np.asarray(grid_image(image, nrow=1))
    assert set(np.unique(grid[2:66, 2:66])) == {0, 255}


def test_history_plot_is_written(tmp_path):
    names = ("loss_D", "loss_G", "D_x", "D_G_z")
    history = [history_row("step", 1, s, dict(zip(names, [1.0 / s, s / 10, 0.8, 0.2])), 1.0, 128) for s in range(1, 20)]
    history.append(history_row("epoch", 1, 19, dict(zip(names, [0.5, 1.0, 0.8, 0.2])), 10.0, 19 * 128))
    path = save_figure(history_figure(history, title="run x"), tmp_path / "losses.png")
    image = Image.open(path)
    assert image.size[0] > 800 and image.size[1] > 300
    assert np.asarray(image.convert("L")).std() > 10  # something was drawn


def test_the_history_figure_draws_a_panel_per_group_and_one_per_evaluation():
    names = ("loss_D", "loss_G", "D_x", "D_G_z")
    history = [history_row("step", 1, s, dict(zip(names, [1.0, 1.0, 0.6, 0.4])), 1.0, 128) for s in range(1, 5)]
    assert [axes.get_title() for axes in history_figure(history).axes] == ["Losses", "Discriminator outputs"]
    history.append({**history_row("epoch", 1, 4, dict(zip(names, [1.0, 1.0, 0.6, 0.4])), 4.0, 512), "fid": 40.0,
                    "inception_score": 2.5})  # a metric's value STATISTICS does not list: drawn under its own name
    figure = history_figure(history, loss="hinge")
    assert [axes.get_title() for axes in figure.axes] == ["Losses", "Discriminator outputs", "FID", "inception_score"]
    assert figure.axes[1].get_ylabel() == "mean raw score (unbounded)"  # hinge: scores, not probabilities


def test_a_statistic_reported_by_a_loss_or_a_network_gets_a_panel_of_its_own():
    names = ("loss_D", "loss_G", "D_x", "D_G_z", "r1_penalty")
    history = [history_row("step", 1, s, dict(zip(names, [1.0, 1.0, 0.6, 0.4, 0.1 * s])), 1.0, 128)
               for s in range(1, 5)]
    figure = history_figure(history, loss="r1")
    assert [axes.get_title() for axes in figure.axes] == ["Losses", "Discriminator outputs", "r1_penalty"]
    assert list(figure.axes[2].lines[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3, 0.4])
