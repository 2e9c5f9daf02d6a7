"""Whole-step CUDA graphs, the mechanics: capturing a step into the run's memory pool, the side-stream warm-up,
and what a failed capture leaves behind put right (the generators, the allocator). When to capture, replay and
check is execution.py's.

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
    """A captured step: `replay()` runs it and returns its statistics (overwritten by the next replay)."""

    replay: Callable[[], Statistics]


def cuda_capture(body: Callable[[], Statistics], generator: torch.Generator, pool: Any) -> Captured:
    """Capture `body` in a CUDA graph (without running it), its memory in `pool` (CapturePool.handle)."""
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    # thread_local: other threads (DataLoader's pin-memory thread when the data streams) may go on working
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        outputs = body()

    def replay() -> Statistics:
        graph.replay()
        return outputs

    return Captured(replay)


@dataclass
class CapturePool:
    """The memory pool every graph of a run captures into, its handle held by the run so that a failed capture can
    be given back. torch's capture_end throws before it tells the caching allocator that the capture ended: the
    allocator then stays "capturing" for the rest of the process (empty_cache fails an assert, the free-and-retry
    on out-of-memory is skipped, every later capture fails as it starts) and the pool is never released.

    end_capture and release are the allocator's endAllocateToPool and releasePool for the capture's device, None
    where this torch has neither of their private names; empty_cache empties the caches torch.cuda.graph empties
    as a capture begins (the device's, and the pinned host memory's where torch has that call), which fails
    while an allocator is left capturing."""

    handle: Any  # what torch.cuda.graph(pool=...) takes
    end_capture: Callable[[Any], None] | None
    release: Callable[[Any], None] | None
    empty_cache: Callable[[], None]

    def give_back(self) -> bool:
        """After a failed capture: end the allocator's capture into the pool and release the failed capture's share
        of it; True when the allocator is capturing no more (its empty_cache works again)."""
        if self.end_capture is not None and self.release is not None:
            try:
                self.end_capture(self.handle)
            except RuntimeError:  # "not currently recording to mempool_id": the capture had ended (its graph,
                pass  # once dropped, releases its share) or had not begun (it holds no share)
            else:
                self.release(self.handle)
        try:
            self.empty_cache()
        except RuntimeError:
            return False
        return True


def capture_pool(device: torch.device) -> CapturePool:
    """A new pool for the graphs of a run on `device` (on the CPU, where nothing is captured, an empty stand-in)."""
    if device.type != "cuda":
        return CapturePool(None, None, None, lambda: None)
    end = private_call("_cuda_endAllocateToPool", "_cuda_endAllocateCurrentStreamToPool")  # torch 2.14 / 2.4
    release = private_call("_cuda_releasePool")
    empty_host_cache = private_call("_host_emptyCache")  # (what torch.cuda.graph empties too, where torch has it)

    def empty_caches() -> None:
        torch.cuda.empty_cache()
        if empty_host_cache is not None:
            empty_host_cache()

    return CapturePool(torch.cuda.graph_pool_handle(),
                       None if end is None else lambda pool: end(torch.cuda.current_device(), pool),
                       None if release is None else lambda pool: release(torch.cuda.current_device(), pool),
                       empty_caches)


def private_call(*names: str) -> Callable[..., Any] | None:
    """The first of torch._C's private functions by these names (torch renames them between versions), or None."""
    return next((getattr(torch._C, name) for name in names if hasattr(torch._C, name)), None)


def first_cause(error: BaseException) -> BaseException:
    """The error a failed capture began with: torch.cuda.graph's exit ends the capture, which then raises a generic
    "operation failed due to a previous error during capture" over the error of the operation that broke it."""
    context = error.__context__
    return context if context is not None and not error.__suppress_context__ else error


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
