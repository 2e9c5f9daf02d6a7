"""Whole-step CUDA graphs, the mechanics: capturing a step, the side-stream warm-up, and the generators put
right after a failed capture. When to capture, replay and check is execution.py's.

What a graph cannot see is kept on the device: the EMA's share follows Adam's step count there (training/ema.py);
the run's noise generator is registered with each graph (torch registers its
default CUDA generator, which dropout draws from), so a replay draws the same numbers an eager step would and
advances each generator as far (a checkpoint's RNG state stays exact); Adam is capturable (its step count
lives on the device); gradients are zeroed in place, never freed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..models.statistics import Statistics
from .state import TrainState

CAPTURABLE_WARNING = "This instance was constructed with capturable=True"  # torch.optim's health check, eager


@dataclass
class Captured:
    """A captured step: `replay()` runs it and returns its statistics (overwritten by the next replay); `pool`
    is the memory pool a later capture shares."""

    replay: Callable[[], Statistics]
    pool: Any = None


def cuda_capture(body: Callable[[], Statistics], generator: torch.Generator, pool: Any = None) -> Captured:
    """Capture `body` in a CUDA graph (without running it), in `pool` when given."""
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    # thread_local: other threads (DataLoader's pin-memory thread when the data streams) may go on working
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        outputs = body()

    def replay() -> Statistics:
        graph.replay()
        return outputs

    return Captured(replay, graph.pool())


def checks_replays(device: torch.device) -> bool:
    """Whether the first replays are checked against the eager step: on CUDA, where a real graph replays. (On
    the CPU nothing is captured, and a check would only cost time.)"""
    return device.type == "cuda"


def revive_generators(state: TrainState, streams: dict[str, torch.Tensor]) -> None:
    """After a failed capture, generators holding the saved states. torch leaves a generator that was registered
    with a graph whose capture failed marked as capturing (the capture's end throws before the generators'
    epilogue), and its next draw outside a graph raises: the run's noise generator is replaced by a new one, and
    the default CUDA generator is pointed at a new state (graphsafe_set_state)."""
    state.progress.noise_rng = generator_holding(state.progress.noise_rng.device, streams["noise"])
    torch.set_rng_state(streams["torch_cpu"])
    device = state.setup.device
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.default_generators[index].graphsafe_set_state(
            generator_holding(torch.device("cuda", index), streams["torch_cuda"]))


def generator_holding(device: torch.device, saved: torch.Tensor) -> torch.Generator:
    generator = torch.Generator(device)
    generator.set_state(saved)
    return generator


@contextlib.contextmanager
def capturable_warning_hidden():
    """Eager steps of a capturable Adam: torch warns once that capturable=True costs speed outside a graph; the
    run is about to capture (or has fallen back), so the warning would only alarm."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CAPTURABLE_WARNING)
        yield
