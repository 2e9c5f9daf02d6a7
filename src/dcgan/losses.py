"""The DCGAN losses: binary cross-entropy on D's logits, with optional one-sided label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_to(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE of sigmoid(logits) against a constant target (stable: computed from the logits)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = 1.0, fake_label: float = 0.0) -> torch.Tensor:
    """D learns to call real images real_label (0.9 = smoothing) and generated ones fake_label."""
    return bce_to(real_logits, real_label) + bce_to(fake_logits, fake_label)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating G loss: make D call generated images real (target 1, never smoothed)."""
    return bce_to(fake_logits, 1.0)
