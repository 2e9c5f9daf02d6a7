"""An exponential moving average of G's weights (Yazici et al., 2019): after G's t-th step (t = 1, 2, ...)
    ema = d * ema + (1 - d) * weights,   d = min(decay, 0.5 ** (1 / (rampup * t))).
The second term is a warm-up in images, as StyleGAN2's `ema_rampup`: the average's half-life (the images after
which a step's weights count half) is at most `rampup` times the images G has trained on, so early on the
average follows a G that still changes fast, and it reaches `decay` only when the run is long enough (with
--ema 0.999 and batch 128: a half-life of 693 steps, 88,700 images, reached after 4.4 million images at
--ema-rampup 0.02). --ema-rampup 0 turns the warm-up off.

The average's BatchNorm layers keep statistics of its own weights (models/standing.py): the step averages the
weights only, and the run recomputes the statistics where the average draws (grids, evaluations, checkpoints).

t is G's optimizer's own step count, on the device: the step computes d there, so a step replayed from a CUDA
graph uses this step's value, and a resumed run continues the count its checkpoint holds.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.standing import NORMS, local_batch_norms


def ema_copy(generator: nn.Module) -> nn.Module:
    """A frozen copy of G that starts equal to it; its BatchNorm layers local to this process (a SyncBatchNorm
    would wait for the other processes each time one of them settles the average's statistics)."""
    return local_batch_norms(copy.deepcopy(generator)).requires_grad_(False)


def ema_decay(decay: float, rampup: float, updates: torch.Tensor | int) -> torch.Tensor:
    """The decay used at G's `updates`-th step: the warm-up's until it reaches `decay` (float64, on the device of
    `updates`; computed as Python computes it, so a float32 share rounds the same everywhere)."""
    t = torch.as_tensor(updates).double()
    if not rampup:
        return torch.full_like(t, decay)
    return torch.clamp(torch.pow(0.5, 1.0 / (rampup * t)), max=decay)


def g_updates(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """G's steps so far: Adam's step count (of G's first parameter), a tensor that Adam advances in place."""
    return optimizer.state[optimizer.param_groups[0]["params"][0]]["step"]


def followed_buffers(ema: nn.Module, generator: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(average's, G's) buffers the average copies from G: all but BatchNorm's statistics, which are its own."""
    return [(saved, buffer) for average, module in zip(ema.modules(), generator.modules())
            if not isinstance(module, NORMS)
            for saved, buffer in zip(average.buffers(recurse=False), module.buffers(recurse=False))]


@torch.no_grad()
def move_ema(ema: nn.Module, generator: nn.Module, share: float | torch.Tensor) -> None:
    """ema += share * (weights - ema), `share` being G's weight in the average (a float32 0-d tensor on the
    device, or a number); G's other buffers copied."""
    for average, weight in zip(ema.parameters(), generator.parameters()):
        average.lerp_(weight, share)
    for saved, buffer in followed_buffers(ema, generator):
        saved.copy_(buffer)
