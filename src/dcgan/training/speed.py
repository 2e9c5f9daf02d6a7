"""The speed settings of a run, resolved for its device: bf16 autocast, channels-last layout, fused Adam,
cuDNN autotuning and torch.compile. Each is measured in benchmarks/ (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import TrainConfig


@dataclass(frozen=True)
class SpeedPlan:
    device: torch.device
    bf16: bool  # forward passes under bf16 autocast (losses and optimizer state stay fp32)
    channels_last: bool  # G, D and the real images in NHWC layout
    fused_adam: bool  # one fused kernel per optimizer step (CUDA)
    compile: bool  # torch.compile of G and D

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def describe(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else "fp32"]
        parts += [name for name, on in (("channels-last", self.channels_last), ("fused Adam", self.fused_adam),
                                        ("compiled", self.compile)) if on]
        return ", ".join(parts)


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX): then bf16 convolutions beat fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def speed_plan(cfg: TrainConfig, device: torch.device) -> SpeedPlan:
    """auto: bf16 autocast on CUDA and on CPUs with native bf16; channels-last everywhere (measured faster on
    both, docs/benchmarks.md); fused Adam on CUDA."""
    cuda = device.type == "cuda"
    bf16_is_fast = cuda or cpu_has_native_bf16()
    return SpeedPlan(device=device, bf16=cfg.precision == "bf16" or (cfg.precision == "auto" and bf16_is_fast),
                     channels_last=cfg.channels_last != "off", fused_adam=cuda, compile=cfg.compile)


def prepare_networks(plan: SpeedPlan, *networks: nn.Module, wrap=None) -> list:
    """Put the networks in the plan's layout; return what the training step calls: each network, wrapped by
    `wrap` (DDP under torchrun), compiled with --compile."""
    if plan.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: autotuned convolutions pay off
    callables = []
    for network in networks:
        if plan.channels_last:
            network.to(memory_format=torch.channels_last)
        wrapped = wrap(network) if wrap else network
        callables.append(torch.compile(wrapped) if plan.compile else wrapped)
    return callables


def adam(parameters, lr: float, cfg: TrainConfig, plan: SpeedPlan) -> torch.optim.Adam:
    """Adam with the (resolved) config's betas; fused on CUDA."""
    options = {"fused": True} if plan.fused_adam else {}
    return torch.optim.Adam(parameters, lr=lr, betas=(cfg.beta1, cfg.beta2), **options)
