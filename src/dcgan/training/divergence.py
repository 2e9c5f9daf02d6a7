"""Non-finite losses and weights: noticed on the device without a host sync per step, read every N steps.

A NaN or an infinity in a loss or in D's outputs means the run has diverged (a learning rate too high, an
overflow): training stops, naming the first bad step, and no checkpoint is written from that point on.
"""

from __future__ import annotations

import torch
from torch import nn

NONE_YET = 2**62  # the first bad step while every step was finite


class NonFiniteWatch:
    """Tracks the first step whose statistics held a NaN or an infinity, on the metrics' device."""

    def __init__(self, device: torch.device, step: int = 0):
        self.step = torch.tensor(step, dtype=torch.int64, device=device)  # steps done, counted on the device
        self.first_bad = torch.tensor(NONE_YET, dtype=torch.int64, device=device)

    def observe(self, values: torch.Tensor) -> None:
        """Called after each step with its statistics, stacked; four tiny kernels, no sync."""
        self.step += 1
        bad = ~torch.isfinite(values).all()
        self.first_bad = torch.where(bad, torch.minimum(self.first_bad, self.step), self.first_bad)


def all_finite(*networks: nn.Module) -> bool:
    """Whether every weight and buffer of the networks is finite (one host sync)."""
    tensors = [t for network in networks for t in network.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
