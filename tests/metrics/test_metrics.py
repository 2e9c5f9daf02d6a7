"""The metrics against independent references and constructed cases with known answers."""

import numpy as np
import pytest
import scipy.linalg
import torch

from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.kid import kernel_distance
from dcgan.metrics.precision_recall import precision_recall


def reference_fid(real, fake):
    """The textbook formula with scipy's matrix square root."""
    real, fake = real.numpy().astype(np.float64), fake.numpy().astype(np.float64)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r + cov_f - 2 * root))


def reference_kid(real, fake):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 on the whole sets."""
    x, y = real.numpy().astype(np.float64), fake.numpy().astype(np.float64)
    d, m = x.shape[1], x.shape[0]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


@pytest.mark.parametrize("shift", [0.0, 0.5, 3.0])
def test_fid_matches_the_scipy_reference(shift):
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(500, 16, generator=generator)
    fake = torch.randn(500, 16, generator=generator) * 1.3 + shift
    ours, reference = frechet_distance(real, fake), reference_fid(real, fake)
    assert ours == pytest.approx(reference, rel=1e-3, abs=1e-6)


def test_fid_of_a_pure_mean_shift_is_its_squared_length():
    real = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(real, real + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)


def test_kid_matches_the_reference_and_is_near_zero_for_the_same_distribution():
    generator = torch.Generator().manual_seed(2)
    real, fake = torch.randn(300, 10, generator=generator), torch.randn(300, 10, generator=generator) + 1.0
    mean, std = kernel_distance(real, fake, subsets=1, subset_size=300)
    assert mean == pytest.approx(reference_kid(real, fake), rel=1e-6)
    same_mean, _ = kernel_distance(real, torch.randn(300, 10, generator=generator), subsets=20, subset_size=100)
    assert abs(same_mean) < 0.05 * mean
    assert kernel_distance(real, fake, subsets=5, subset_size=100) == kernel_distance(real, fake, 5, 100)


def test_precision_and_recall_on_constructed_sets():
    grid = torch.stack(torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="ij"), -1).view(-1, 2)
    assert precision_recall(grid, grid.clone()) == (1.0, 1.0)
    far = grid + 100.0
    assert precision_recall(grid, far) == (0.0, 0.0)
    # generated points all inside the real manifold but covering only its left half
    left = grid[grid[:, 0] < 5] + 0.1
    precision, recall = precision_recall(grid, left)
    assert precision == 1.0
    assert 0.45 <= recall <= 0.65  # the right half is missed (the border column is reached by left balls)
    # half of the generated points are far away: precision halves, recall stays full
    mixed = torch.cat([grid + 0.1, grid + 100.0])
    assert precision_recall(grid, mixed)[0] == pytest.approx(0.5)
