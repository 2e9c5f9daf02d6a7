"""Whole-step CUDA graphs: the training step captured once and replayed for every batch, checking itself.

At batch 128 a DCGAN step is a few hundred small kernels, and launching them costs more than running them
(docs/benchmarks.md). `GraphedSteps` runs the first steps eagerly on a side stream (cuDNN autotuning, the
optimizers' state, the gradients all allocated), then captures `step_body` once per kind of step (the D step,
and with n_critic > 1 the D + G step, which shares the first graph's memory pool) and from then on copies each
batch into a static input and replays.

What a graph cannot see is handled outside it: the EMA share is filled into a device tensor before each replay
(training/step.begin_step); the run's noise generator is registered with each graph (torch registers its
default CUDA generator, which dropout draws from), so a replay draws the same numbers an eager step would and
advances each generator as far (a checkpoint's RNG state stays exact); Adam is capturable (its step count
lives on the device); gradients are zeroed in place, never freed.

The self-check: on CUDA, the first replay of each kind, and one again RECHECK_AFTER replays later, is run
twice from the same state, replayed and eager (snapshot.compare_steps). When they agree the run goes on from the
eager result and says so in one line; when they differ, or a capture fails, it says so in one line and trains
eagerly from then on. Either way the outcome is a `graph_check` row of the history.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import first_line
from .history import graph_check_row
from .snapshot import TOLERANCES, compare_steps, restore_snapshot, take_snapshot
from .state import TrainState, rank_streams
from .step import begin_step, is_g_step, step_body, train_step

WARMUP_G_STEPS = 3  # eager steps of each kind before capture (the count PyTorch's examples use)
RECHECK_AFTER = 100  # replays of a kind between its first checked replay and its second
CAPTURABLE_WARNING = "This instance was constructed with capturable=True"  # torch.optim's health check, eager


class CaptureFailed(Exception):
    """Capturing the step raised; the run continues eagerly (the message says why)."""


@dataclass
class Captured:
    """A captured step: `replay()` runs it and returns its metrics (overwritten by the next replay); `pool` is
    the memory pool a later capture shares."""

    replay: Callable[[], torch.Tensor]
    pool: Any = None


def cuda_capture(body: Callable[[], torch.Tensor], generator: torch.Generator, pool: Any = None) -> Captured:
    """Capture `body` in a CUDA graph (without running it), in `pool` when given."""
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    # thread_local: other threads (DataLoader's pin-memory thread when the data streams) may go on working
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        outputs = body()

    def replay() -> torch.Tensor:
        graph.replay()
        return outputs

    return Captured(replay, graph.pool())


def checks_replays(device: torch.device) -> bool:
    """Whether the first replays are checked against the eager step: on CUDA, where a real graph replays. (On
    the CPU nothing is captured, and a check would only cost time.)"""
    return device.type == "cuda"


class GraphedSteps:
    """Runs each step of `state`: eagerly until warm, then replayed from its graph; eagerly again for good when
    a capture fails or a checked replay differs from the eager step."""

    def __init__(self, state: TrainState, log: Callable[[str], None]):
        self.state, self.log = state, log
        self.warmup_steps = WARMUP_G_STEPS * state.cfg.n_critic  # every kind of step runs a few times
        self.eager_done = 0
        self.replayed = 0  # steps replayed from a graph
        self.graphs: dict[bool, Captured] = {}  # g_step -> its graph
        self.replays_of: dict[bool, int] = {False: 0, True: 0}  # g_step -> replays of that kind so far
        self.check = checks_replays(state.device)
        self.off = False  # a capture failed or a replay differed: eager from now on
        self.real: torch.Tensor | None = None  # the static inputs every replay reads
        self.labels: torch.Tensor | None = None

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.off:
            with capturable_warning_hidden():
                return train_step(self.state, real, labels)
        if self.eager_done < self.warmup_steps:
            metrics = warm_up_step(self.state, real, labels)
            self.eager_done += 1  # (counted once it succeeded: a step the compile guard redoes counts once)
            return metrics
        g_step = is_g_step(self.state)
        if self.real is None:
            self.real = torch.empty_like(real)  # keeps the batch's layout (channels-last)
            self.labels = None if labels is None else torch.empty_like(labels)
        begin_step(self.state)
        self.real.copy_(real)
        if labels is not None:
            self.labels.copy_(labels)
        if g_step not in self.graphs:
            try:
                self.graphs[g_step] = self.captured(g_step)
            except CaptureFailed as failure:
                self.turn_off(f"capturing the step failed ({failure}); training goes on eagerly (the failed "
                              "capture's memory stays reserved until the process ends: restart with "
                              "--cuda-graphs off to avoid it)")
                return self(real, labels)
        done = self.replays_of[g_step]
        self.replays_of[g_step] += 1
        self.replayed += 1
        if self.check and done in (0, RECHECK_AFTER):
            return self.checked_replay(g_step)
        return self.graphs[g_step].replay().clone()

    def captured(self, g_step: bool) -> Captured:
        """The step of this kind captured (nothing runs yet); CaptureFailed, with every random stream as it was,
        when it cannot be."""
        state = self.state
        streams = rank_streams(state)
        shared = next(iter(self.graphs.values())).pool if self.graphs else None
        try:
            return cuda_capture(lambda: step_body(state, self.real, self.labels, g_step), state.noise_rng, shared)
        except Exception as error:  # noqa: BLE001 (whatever the capture raised, the run goes on eagerly)
            if state.device.type == "cuda":  # a capture that failed at its end leaves its own stream current
                torch.cuda.set_stream(torch.cuda.default_stream(state.device))
            revive_generators(state, streams)
            state.discriminator.requires_grad_(True)
            raise CaptureFailed(f"{type(error).__name__}: {first_line(error)}"[:200]) from None

    def checked_replay(self, g_step: bool) -> torch.Tensor:
        """Replay, then run the same step eagerly from the same state and compare; go on from the eager result."""
        state = self.state
        before = take_snapshot(state)
        replayed_metrics = self.graphs[g_step].replay().clone()
        replayed = take_snapshot(state)
        restore_snapshot(state, before)
        with capturable_warning_hidden():
            metrics = step_body(state, self.real, self.labels, g_step)
        verdict = compare_steps(state, before, replayed, replayed_metrics, metrics,
                                TOLERANCES["bf16" if state.plan.bf16 else "fp32"])
        state.history.append(graph_check_row(state.epoch + 1, state.step + 1, verdict.matches, verdict.difference))
        kind = "the D step" if not g_step else "the D + G step" if state.cfg.n_critic > 1 else "the step"
        if verdict.matches:
            self.log(f"CUDA graphs: replay matches the eager step (largest difference: {verdict.largest}; "
                     f"{kind}, step {state.step + 1})")
        else:
            self.turn_off(f"the replay of {kind} differs from the eager step at step {state.step + 1} "
                          f"({verdict.largest}); training goes on eagerly")
        return metrics

    def turn_off(self, why: str) -> None:
        self.off = True
        self.graphs.clear()
        self.log(f"CUDA graphs off: {why}")


def revive_generators(state: TrainState, streams: dict[str, torch.Tensor]) -> None:
    """After a failed capture, generators holding the saved states. torch leaves a generator that was registered
    with a graph whose capture failed marked as capturing (the capture's end throws before the generators'
    epilogue), and its next draw outside a graph raises: the run's noise generator is replaced by a new one, and
    the default CUDA generator is pointed at a new state (graphsafe_set_state)."""
    state.noise_rng = generator_holding(state.noise_rng.device, streams["noise"])
    torch.set_rng_state(streams["torch_cpu"])
    if state.device.type == "cuda":
        index = state.device.index if state.device.index is not None else torch.cuda.current_device()
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


def warm_up_step(state: TrainState, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """An eager step; on CUDA on a side stream, as capture requires of the work before it."""
    with capturable_warning_hidden():
        if state.device.type != "cuda":
            return train_step(state, real, labels)
        main, side = torch.cuda.current_stream(state.device), torch.cuda.Stream(state.device)
        side.wait_stream(main)
        try:
            with torch.cuda.stream(side):
                return train_step(state, real, labels)
        finally:
            main.wait_stream(side)
