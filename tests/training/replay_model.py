"""A CPU model of what a CUDA graph does to a training step, to stand in for torch.cuda.graph in the tests.

A CUDA graph records the kernels of one call and, on every replay, runs those kernels again on the same memory.
It does not run the Python that launched them. So a replayed step:
  - reads and writes the tensors it was captured with: parameters, gradients, optimizer states, static inputs
    and the EMA share are mutated in place, and a tensor the Python code replaces is never seen by the graph;
  - keeps every Python value as it was at capture (a step counter, a float learning rate, an `if`);
  - cannot read a value back to the host: a host sync during capture makes the capture fail;
  - draws random numbers from the generators it was captured with, advancing them as the eager step would.

`ReplayModel` is called like `graphs.cuda_capture(body, generator, pool)`. It records `body` once under a
TorchDispatchMode (every aten op, with its inputs and outputs; the backward ops come through the same mode),
then undoes what the recording run changed (a capture runs nothing). A replay re-runs the tape: a tensor made
inside the tape is replaced by the new result, a tensor from outside is the same object, mutated in place, and
every other argument is the value it had at recording. Tensors made inside the tape that outlive the recording
(the returned metrics) are static outputs: every replay writes its results into them. A recorded host sync
raises HostSync.

With a `ModelledAllocator`, a capture also does to the allocator what torch's does (CUDACachingAllocator.cpp,
CUDAGraph.cpp): the cache is emptied first, the capture begins allocating to its pool (the pool's use count goes
up), a capture that ends stops allocating to it, and a graph, once dropped, releases its share. A capture whose body
fails ends as torch's does: capture_end raises a generic error over the body's (its __context__) before it tells
the allocator, so the allocator stays capturing and the next empty_cache, or capture, fails.

Tensors are matched by what they are (storage, offset, shape, strides, dtype), not by Python identity: autograd
hands the backward a new Python tensor for every saved output, over the same memory. Every tensor made during
the recording is kept alive until it ends, so no memory is reused and no two tensors share a key.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from dcgan.training.graphs import Captured, CapturePool

aten = torch.ops.aten
HOST_SYNCS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default, aten.item.default,
              aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
              aten.unique_consecutive.default, aten.repeat_interleave.Tensor}  # read a value, or a shape, back


class HostSync(RuntimeError):
    """The recorded body read a device value on the host: a capture on CUDA fails there."""


@dataclass(frozen=True)
class Inside:
    slot: int  # a tensor made by the tape's op number... (its index among the tape's results)


@dataclass
class Entry:
    func: Any
    spec: Any  # the pytree structure of (args, kwargs)
    leaves: list  # Inside(slot), an outside tensor, or a frozen Python value
    results: list  # for each output leaf: its new slot, or None (an alias of something already known)


def tensor_key(tensor: torch.Tensor) -> tuple:
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()),
            tensor.dtype, tensor.device)


class Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.tape: list[Entry] = []
        self.known: dict[tuple, Any] = {}  # key -> Inside(slot) or the outside tensor
        self.made: list[torch.Tensor] = []  # every tensor made by the tape (slot = index), alive until the end
        self.originals: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # every outside tensor: (t, its copy)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "profiler":  # record_function markers: no work
            return func(*args, **kwargs)
        if func in HOST_SYNCS:
            raise HostSync(f"{func} reads a device value on the host during capture")
        leaves, spec = tree_flatten((args, kwargs))
        refs = [self.reference(leaf) for leaf in leaves]
        out = func(*args, **kwargs)
        out_leaves, _ = tree_flatten(out)
        results = []
        for leaf in out_leaves:
            if isinstance(leaf, torch.Tensor) and tensor_key(leaf) not in self.known:
                self.known[tensor_key(leaf)] = Inside(len(self.made))
                results.append(len(self.made))
                self.made.append(leaf)
            else:
                results.append(None)
        self.tape.append(Entry(func, spec, refs, results))
        return out

    def reference(self, leaf: Any) -> Any:
        """What the tape records for an argument: Inside(slot), the outside tensor itself, or the value."""
        if not isinstance(leaf, torch.Tensor):
            return leaf
        key = tensor_key(leaf)
        if key not in self.known:  # an outside tensor, seen for the first time: kept as it was (some ops, such as
            self.known[key] = leaf  # native_batch_norm on its running statistics, write without saying so)
            self.originals[key] = (leaf, leaf.detach().clone())
        return self.known[key]


@dataclass
class Tape:
    entries: list[Entry]
    slots: int
    static_outputs: list[tuple[int, weakref.ref]] = field(default_factory=list)  # slot -> a tensor outliving it

    def replay(self) -> None:
        values: list[torch.Tensor | None] = [None] * self.slots
        with torch.no_grad():
            for entry in self.entries:
                leaves = [values[leaf.slot] if isinstance(leaf, Inside) else leaf for leaf in entry.leaves]
                args, kwargs = tree_unflatten(leaves, entry.spec)
                out_leaves, _ = tree_flatten(entry.func(*args, **kwargs))
                for slot, leaf in zip(entry.results, out_leaves):
                    if slot is not None:
                        values[slot] = leaf
            for slot, output in self.static_outputs:
                if output() is not None:
                    output().copy_(values[slot])


class ModelledAllocator:
    """torch's caching allocator as captures touch it; `pool(device)` stands in for graphs.capture_pool."""

    CAPTURING = "captures_underway.empty() INTERNAL ASSERT FAILED"
    GENERIC = "CUDA error: operation failed due to a previous error during capture"

    def __init__(self):
        self.underway: list[tuple[int, int]] = []  # pools being captured into
        self.use_counts: dict[tuple[int, int], int] = {}  # pool -> graphs (and captures underway) holding it
        self.handles = 0

    def pool(self, device: torch.device) -> CapturePool:
        self.handles += 1
        return CapturePool((0, self.handles), self.end, self.release, self.empty_cache)

    def begin(self, pool: tuple[int, int]) -> None:
        self.empty_cache()  # torch.cuda.graph's __enter__, before capture_begin
        self.use_counts[pool] = self.use_counts.get(pool, 0) + 1
        self.underway.append(pool)

    def end(self, pool: tuple[int, int]) -> None:
        if pool not in self.underway:
            raise RuntimeError("endAllocatePool: not currently recording to mempool_id")
        self.underway.remove(pool)

    def release(self, pool: tuple[int, int]) -> None:
        if self.use_counts.get(pool, 0) <= 0:
            raise RuntimeError("uc >= 0 INTERNAL ASSERT FAILED")
        self.use_counts[pool] -= 1

    def empty_cache(self) -> None:
        if self.underway:
            raise RuntimeError(self.CAPTURING)


class ReplayModel:
    """Stands in for graphs.cuda_capture on the CPU: records the body, replays the tape; with an allocator, models
    what a capture, a failed one included, does to it."""

    def __init__(self, allocator: ModelledAllocator | None = None):
        self.tapes: list[Tape] = []
        self.replays = 0
        self.allocator = allocator

    def __call__(self, body, generator: torch.Generator, pool: Any = None) -> Captured:
        if self.allocator is not None:
            self.allocator.begin(pool)
        streams = generator.get_state(), torch.get_rng_state()  # a capture runs nothing, draws nothing
        recorder = Recorder()
        try:
            with recorder:
                outputs = body()
        except Exception:
            if self.allocator is None:
                raise
            raise RuntimeError(ModelledAllocator.GENERIC)  # noqa: B904 (as torch raises it: the body's error is its context)
        finally:  # (also when the capture fails)
            with torch.no_grad():
                for tensor, original in recorder.originals.values():
                    tensor.copy_(original)
            generator.set_state(streams[0])
            torch.set_rng_state(streams[1])
        tape = Tape(recorder.tape, len(recorder.made))
        outside = {key[0] for key, value in recorder.known.items() if not isinstance(value, Inside)}
        made = [(slot, weakref.ref(tensor)) for slot, tensor in enumerate(recorder.made)
                if tensor.untyped_storage().data_ptr() not in outside]
        del recorder
        tape.static_outputs = [(slot, ref) for slot, ref in made if ref() is not None]
        self.tapes.append(tape)

        def replay() -> torch.Tensor:
            self.replays += 1
            tape.replay()
            return outputs

        captured = Captured(replay)
        if self.allocator is not None:
            self.allocator.end(pool)
            weakref.finalize(captured, self.allocator.release, pool)  # the graph's reset, once it is dropped
        return captured
