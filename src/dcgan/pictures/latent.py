"""Walking G's latent space: interpolations between two noise vectors and walks along single coordinates."""

from __future__ import annotations

import torch

WALK_VALUES = (-3.0, 0.0, 3.0)  # a coordinate set to three standard deviations below, at and above the mean


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` vectors on the straight line from z0 to z1, both ends included: (steps, nz)."""
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).unsqueeze(1)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` vectors along the great circle from z0 to z1 (norm interpolated linearly): (steps, nz).

    Gaussian noise lives near a sphere; the straight line between two samples cuts through its inside,
    where G saw no training noise. Falls back to lerp for (nearly) parallel vectors.
    """
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.dot(z0 / n0, z1 / n1).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(z0, z1, steps)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype).unsqueeze(1)
    directions = (torch.sin((1 - t) * omega) * z0 / n0 + torch.sin(t * omega) * z1 / n1) / torch.sin(omega)
    return directions * ((1 - t) * n0 + t * n1)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    if method not in ("lerp", "slerp"):
        raise ValueError(f"unknown interpolation '{method}': use lerp or slerp")
    return (lerp if method == "lerp" else slerp)(z0, z1, steps)


def loop_through(points: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """A closed path through the rows of `points` (K, nz) and back to the first: `steps` vectors from each point
    towards the next, each point once: (K * steps, nz). Played in a loop, it never jumps."""
    legs = [interpolate(points[k], points[(k + 1) % len(points)], steps + 1, method)[:-1] for k in range(len(points))]
    return torch.cat(legs)


def coordinate_influence(generate_images, z: torch.Tensor, values=(-3.0, 3.0)) -> torch.Tensor:
    """How much each coordinate of z moves G's output: the mean absolute pixel change between images with that
    coordinate set to values[0] and to values[1], averaged over the rows of z (N, nz). Returns (nz,).

    `generate_images(noise)` draws images for noise (M, nz); it is called once per coordinate."""
    low, high = values
    scores = torch.empty(z.shape[1])
    for dim in range(z.shape[1]):
        walks = z.repeat(2, 1)
        walks[:len(z), dim], walks[len(z):, dim] = low, high
        images = generate_images(walks)
        scores[dim] = (images[:len(z)] - images[len(z):]).abs().mean()
    return scores


def rank_coordinates(generator, nz: int, n: int = 16, seed: int = 0) -> torch.Tensor:
    """coordinate_influence of G over `n` noise vectors of `seed`: (nz,) scores, higher = moves the image more."""
    from .sampling import generate, noise_for

    return coordinate_influence(lambda noise: generate(generator, noise), noise_for(n, nz, seed))


def most_influential(scores: torch.Tensor, count: int) -> list[int]:
    """The `count` coordinates with the highest influence, strongest first."""
    return scores.argsort(descending=True)[:count].tolist()


def coordinate_walk(z: torch.Tensor, dims: list[int], values=WALK_VALUES) -> torch.Tensor:
    """For each coordinate in `dims`, copies of z with that coordinate set to each of `values`.

    Returns (len(dims), len(values), nz): row i walks coordinate dims[i], every other coordinate stays.
    """
    values = torch.as_tensor(values, dtype=z.dtype)
    walks = z.repeat(len(dims), len(values), 1)
    for row, dim in enumerate(dims):
        if not 0 <= dim < z.numel():
            raise ValueError(f"coordinate {dim} is outside z (0..{z.numel() - 1})")
        walks[row, :, dim] = values
    return walks


def sweep(low: float = -3.0, high: float = 3.0, steps: int = 20) -> list[float]:
    """Evenly spaced values for a smooth walk along one coordinate."""
    return torch.linspace(low, high, steps).tolist()
