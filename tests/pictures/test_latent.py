import math

import pytest
import torch

from dcgan.pictures.latent import WALK_VALUES, coordinate_walk, interpolate, lerp, slerp, sweep


def test_lerp_is_the_straight_line_with_both_ends():
    z0, z1 = torch.zeros(4), torch.ones(4) * 2
    path = lerp(z0, z1, 5)
    assert path.shape == (5, 4)
    assert torch.allclose(path[:, 0], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))


def test_slerp_follows_the_circle_at_even_angles():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(z0, z1, 5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(5))  # stays on the unit circle, lerp would not
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 5), atol=1e-6)
    assert lerp(z0, z1, 5)[2].norm() < 0.8


def test_slerp_interpolates_the_norm_and_handles_parallel_vectors():
    torch.manual_seed(0)
    z0, z1 = torch.randn(100), torch.randn(100) * 2
    path = slerp(z0, z1, 3)
    assert torch.allclose(path[1].norm(), (z0.norm() + z1.norm()) / 2, rtol=1e-5)
    assert torch.allclose(slerp(z0, 2 * z0, 3), lerp(z0, 2 * z0, 3))
    with pytest.raises(ValueError, match="unknown interpolation"):
        interpolate(z0, z1, 3, "cubic")


def test_coordinate_walk_changes_only_the_walked_coordinate():
    z = torch.randn(100)
    walks = coordinate_walk(z, [5, 25, 45, 65, 85])
    assert walks.shape == (5, 3, 100)
    for row, dim in enumerate([5, 25, 45, 65, 85]):
        assert walks[row, :, dim].tolist() == list(WALK_VALUES)
        others = [i for i in range(100) if i != dim]
        assert torch.equal(walks[row][:, others], z[others].expand(3, -1))
    with pytest.raises(ValueError, match="outside z"):
        coordinate_walk(z, [100])


def test_sweep():
    values = sweep(-3, 3, 20)
    assert len(values) == 20 and values[0] == -3 and values[-1] == 3
