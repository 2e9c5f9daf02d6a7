"""The speed settings of a run, resolved for its device: bf16 autocast, channels-last layout, fused Adam,
cuDNN autotuning, whole-step CUDA graphs and torch.compile. Each is measured in benchmarks/ (docs/benchmarks.md)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
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
    cuda_graphs: bool = False  # the whole step captured once and replayed (CUDA, one process)
    notes: tuple[str, ...] = ()  # why a setting asked for (or on by default) is off, one phrase each
    # a new context for the forward passes: bf16 autocast, or one that changes nothing (made once: a step calls it)
    autocast: Callable[[], AbstractContextManager] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "autocast", functools.partial(torch.autocast, self.device.type, dtype=torch.bfloat16)
                           if self.bf16 else contextlib.nullcontext)

    def describe(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else "fp32"]
        parts += [name for name, on in (("channels-last", self.channels_last), ("fused Adam", self.fused_adam),
                                        ("compiled", self.compile), ("CUDA graphs", self.cuda_graphs)) if on]
        return ", ".join(parts + list(self.notes))


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX): then bf16 convolutions beat fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def speed_plan(cfg: TrainConfig, device: torch.device, distributed: bool = False) -> SpeedPlan:
    """auto: bf16 autocast on CUDA and on CPUs with native bf16; channels-last everywhere (measured faster on
    both, docs/benchmarks.md) except under torch.compile on CUDA, whose backward fails with it; fused Adam and
    whole-step CUDA graphs on CUDA (graphs not under torchrun: DDP's all-reduce runs eager)."""
    cuda = device.type == "cuda"
    bf16_is_fast = cuda or cpu_has_native_bf16()
    notes = []
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and not (cfg.compile and cuda))
    if cfg.channels_last == "auto" and not channels_last:
        notes.append("channels-last off for torch.compile")
    no_graphs = graphs_unavailable(device, distributed)
    graphs = cfg.cuda_graphs != "off" and not no_graphs
    if cfg.cuda_graphs == "on" and no_graphs:
        notes.append(f"no CUDA graphs: {no_graphs}")
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and bf16_is_fast)
    return SpeedPlan(device=device, bf16=bf16, channels_last=channels_last, fused_adam=cuda, compile=cfg.compile,
                     cuda_graphs=graphs, notes=tuple(notes))


def graphs_unavailable(device: torch.device, distributed: bool) -> str:
    """Why the step cannot be replayed from CUDA graphs here ("" when it can)."""
    if device.type != "cuda":
        return "they need a CUDA device"
    if distributed:
        return "DDP's all-reduce runs eager under torchrun"
    return ""


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
    """Adam with the (resolved) config's betas; fused on CUDA, and capturable (its step count and bias
    corrections on the device, no host read) when the step is replayed from a CUDA graph."""
    options = {"fused": True} if plan.fused_adam else {}
    if plan.cuda_graphs:
        options["capturable"] = True
    return torch.optim.Adam(parameters, lr=lr, betas=(cfg.beta1, cfg.beta2), **options)
