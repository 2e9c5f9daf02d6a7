"""An exponential moving average of G's weights (Yazici et al., 2019): after G's t-th step (t = 1, 2, ...)
    ema = d * ema + (1 - d) * weights,   d = min(decay, (1 + t) / (10 + t)),
BatchNorm running statistics copied as they are. The warm-up in d (as in TensorFlow's moving averages) lets
the average forget G's random start quickly: with d = 0.999 from the first step, the start would still
weigh 0.999^1000 = 37 % after 1,000 steps. Its images are usually smoother and better than G's own;
with --ema the per-epoch grids, `sample` and the evaluations use it.

t is G's optimizer's own step count, on the device: the step computes d there, so a step replayed from a CUDA
graph uses this step's value, and a resumed run continues the count its checkpoint holds.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(generator: nn.Module) -> nn.Module:
    """A frozen copy of G that starts equal to it."""
    return copy.deepcopy(generator).requires_grad_(False)


def ema_decay(decay: float, updates: torch.Tensor | int) -> torch.Tensor:
    """The decay used at G's `updates`-th step: the warm-up value until it reaches `decay` (float64, on the
    device of `updates`; computed as Python computes it, so a float32 share rounds the same everywhere)."""
    t = torch.as_tensor(updates).double()
    return torch.clamp((1.0 + t) / (10.0 + t), max=decay)


def g_updates(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """G's steps so far: Adam's step count (of G's first parameter), a tensor that Adam advances in place."""
    return optimizer.state[optimizer.param_groups[0]["params"][0]]["step"]


@torch.no_grad()
def move_ema(ema: nn.Module, generator: nn.Module, share: float | torch.Tensor) -> None:
    """ema += share * (weights - ema), `share` being G's weight in the average (a float32 0-d tensor on the
    device, or a number)."""
    for average, weight in zip(ema.parameters(), generator.parameters()):
        average.lerp_(weight, share)
    for saved, buffer in zip(ema.buffers(), generator.buffers()):
        saved.copy_(buffer)
