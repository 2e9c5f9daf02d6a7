"""The GAN losses, all on D's raw outputs (logits for bce, scores for the others).

    bce      D: BCE(D(x), real_label) + BCE(D(G(z)), fake_label)      G: BCE(D(G(z)), 1)  (non-saturating)
    lsgan    D: mean (D(x) - real_label)^2 + mean (D(G(z)) - fake_label)^2   G: mean (D(G(z)) - 1)^2
    hinge    D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))           G: -mean D(G(z))
    wgan-gp  D: mean D(G(z)) - mean D(x) + gp_weight * gradient penalty G: -mean D(G(z))
real_label 0.9 is one-sided label smoothing (bce and lsgan).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def bce_to(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE of sigmoid(logits) against a constant target (stable: computed from the logits)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0, fake_label: float = 0.0, loss: str = "bce") -> torch.Tensor:
    """D's loss without any gradient penalty (see gradient_penalty)."""
    if loss == "bce":
        return bce_to(real_logits, real_label) + bce_to(fake_logits, fake_label)
    if loss == "lsgan":
        return (real_logits - real_label).square().mean() + (fake_logits - fake_label).square().mean()
    if loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if loss == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    raise ValueError(f"unknown loss {loss!r}")


def generator_loss(fake_logits: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """G's loss: make D call generated images real (the bce target is 1, never smoothed)."""
    if loss == "bce":
        return bce_to(fake_logits, 1.0)
    if loss == "lsgan":
        return (fake_logits - 1).square().mean()
    if loss in ("hinge", "wgan-gp"):
        return -fake_logits.mean()
    raise ValueError(f"unknown loss {loss!r}")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     mixing: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al., 2017): mean over images of (||grad_x critic(x)||_2 - 1)^2 at
    x = mixing * real + (1 - mixing) * fake, one mixing weight in [0, 1] per image, shape (B,)."""
    weights = mixing.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    between = (weights * real.detach() + (1 - weights) * fake.detach()).requires_grad_(True)
    scores = critic(between).float()
    (grad,) = torch.autograd.grad(scores.sum(), between, create_graph=True)
    return (grad.float().flatten(1).norm(dim=1) - 1).square().mean()


def mean_output(outputs: torch.Tensor, loss: str) -> torch.Tensor:
    """D's mean output for the history: the probability of 'real' for bce, the raw score otherwise."""
    return torch.sigmoid(outputs).mean() if loss == "bce" else outputs.mean()
