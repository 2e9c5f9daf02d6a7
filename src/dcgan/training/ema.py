"""An exponential moving average of G's weights (Yazici et al., 2019): after G's t-th step (t = 1, 2, ...)
    ema = d * ema + (1 - d) * weights,   d = min(decay, (1 + t) / (10 + t)),
BatchNorm running statistics copied as they are. The warm-up in d (as in TensorFlow's moving averages) lets
the average forget G's random start quickly: with d = 0.999 from the first step, the start would still
weigh 0.999^1000 = 37 % after 1,000 steps. Its images are usually smoother and better than G's own;
with --ema the per-epoch grids, `sample` and the evaluations use it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(generator: nn.Module) -> nn.Module:
    """A frozen copy of G that starts equal to it."""
    return copy.deepcopy(generator).requires_grad_(False)


def ema_decay(decay: float, updates: int) -> float:
    """The decay used at G's `updates`-th step: the warm-up value until it reaches `decay`."""
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def move_ema(ema: nn.Module, generator: nn.Module, share: float | torch.Tensor) -> None:
    """ema += share * (weights - ema); `share` may be a 0-d tensor on the device that is filled before each step,
    so that a step replayed from a CUDA graph uses this step's value."""
    for average, weight in zip(ema.parameters(), generator.parameters()):
        average.lerp_(weight, share)
    for saved, buffer in zip(ema.buffers(), generator.buffers()):
        saved.copy_(buffer)
