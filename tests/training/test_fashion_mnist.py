"""A real run on Fashion-MNIST: a few hundred steps of the full-width 32x32 DCGAN on the CPU."""

import math

import pytest

from dcgan.models.dcgan import build_models
from dcgan.pictures.sampling import generate, noise_for
from dcgan.training.history import read_history_csv

pytestmark = pytest.mark.slow


def corner_mean(images):
    """Mean value of the 4x4 corners, in [-1, 1]: Fashion-MNIST's corners are black (-1)."""
    return images[..., [0, 1, 2, 3, -4, -3, -2, -1], :][..., [0, 1, 2, 3, -4, -3, -2, -1]].mean().item()


def test_a_few_hundred_steps_on_real_fashion_mnist(fashion_run):
    state, root = fashion_run
    assert state.step == 300 and state.cfg.channels == 1 and state.cfg.ngf == 64
    samples, checkpoints = root / "samples" / "fm", root / "checkpoints" / "fm"
    for name in ("real.png", "epoch_000.png", "epoch_001.png", "epoch_002.png", "losses.png"):
        assert (samples / name).stat().st_size > 0, name
    for name in ("epoch_001.pt", "epoch_002.pt", "last.pt", "config.json", "history.csv"):
        assert (checkpoints / name).stat().st_size > 0, name
    rows = read_history_csv(checkpoints / "history.csv")
    assert len(rows) == 30 + 2
    for row in rows:
        assert all(math.isfinite(row[key]) for key in ("loss_D", "loss_G", "D_x", "D_G_z"))
    early = [row for row in rows if row["kind"] == "step"][:10]  # the first 100 steps
    assert all(row["D_x"] > row["D_G_z"] for row in early)
    # G has learnt the look of the data: garments on black, where the untrained G gave grey noise
    noise = noise_for(256, 100, seed=7)
    trained_corners = corner_mean(generate(state.nets.generator, noise))
    untrained, _ = build_models(32, 1, 100, 64, 64)
    assert corner_mean(generate(untrained, noise)) > -0.2
    assert trained_corners < -0.6, trained_corners
