"""Whole-step CUDA graphs: the training step captured once and replayed for every batch.

At batch 128 a DCGAN step is a few hundred small kernels, and launching them costs more than running them
(docs/benchmarks.md). `GraphedSteps` runs the first steps eagerly on a side stream (cuDNN autotuning, the
optimizers' state, the gradients all allocated), then captures `step_body` once per kind of step (the D step,
and with n_critic > 1 the D + G step) and from then on copies each batch into a static input and replays.

What a graph cannot see is handled outside it: the EMA share is filled into a device tensor before each replay
(training/step.begin_step); the run's noise generator is registered with each graph, so a replay draws the
same numbers an eager step would and advances the generator as far (a checkpoint's RNG state stays exact);
Adam is capturable (its step count lives on the device); gradients are zeroed in place, never freed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import first_line
from .state import TrainState, rank_streams, set_rank_streams
from .step import begin_step, is_g_step, step_body, train_step

WARMUP_G_STEPS = 3  # eager steps of each kind before capture (the count PyTorch's examples use)
Replay = Callable[[], torch.Tensor]  # runs the captured step; returns its metrics (overwritten by the next replay)


class CaptureFailed(Exception):
    """Capturing the step raised; the run continues eagerly (the message says why)."""


def cuda_capture(body: Callable[[], torch.Tensor], generator: torch.Generator) -> Replay:
    """Capture `body` in a CUDA graph (without running it); return what replays it."""
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    # thread_local: other threads (DataLoader's pin-memory thread when the data streams) may go on working
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        outputs = body()

    def replay() -> torch.Tensor:
        graph.replay()
        return outputs

    return replay


class GraphedSteps:
    """Runs each step of `state`: eagerly until warm, then replayed from its graph."""

    def __init__(self, state: TrainState):
        self.state = state
        self.warmup_steps = WARMUP_G_STEPS * state.cfg.n_critic  # every kind of step runs a few times
        self.eager_done = 0
        self.replayed = 0  # steps replayed from a graph
        self.replays: dict[bool, Replay] = {}  # g_step -> its graph
        self.real: torch.Tensor | None = None  # the static inputs every replay reads
        self.labels: torch.Tensor | None = None

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.eager_done < self.warmup_steps:
            self.eager_done += 1
            return warm_up_step(self.state, real, labels)
        g_step = is_g_step(self.state)
        if self.real is None:
            self.real = torch.empty_like(real)  # keeps the batch's layout (channels-last)
            self.labels = None if labels is None else torch.empty_like(labels)
        begin_step(self.state)
        self.real.copy_(real)
        if labels is not None:
            self.labels.copy_(labels)
        if g_step not in self.replays:
            self.replays[g_step] = self.captured(g_step)
        self.replayed += 1
        return self.replays[g_step]().clone()

    def captured(self, g_step: bool) -> Replay:
        """The step of this kind captured (nothing runs yet); CaptureFailed, with every random stream as it was,
        when it cannot be."""
        state = self.state
        streams = rank_streams(state)
        try:
            return cuda_capture(lambda: step_body(state, self.real, self.labels, g_step), state.noise_rng)
        except Exception as error:  # noqa: BLE001 (whatever the capture raised, the run goes on eagerly)
            if state.device.type == "cuda":  # a capture that failed at its end leaves its own stream current
                torch.cuda.set_stream(torch.cuda.default_stream(state.device))
            set_rank_streams(state, streams)
            state.discriminator.requires_grad_(True)
            raise CaptureFailed(f"{type(error).__name__}: {first_line(error)}"[:200]) from None


def warm_up_step(state: TrainState, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """An eager step; on CUDA on a side stream, as capture requires of the work before it."""
    if state.device.type != "cuda":
        return train_step(state, real, labels)
    main, side = torch.cuda.current_stream(state.device), torch.cuda.Stream(state.device)
    side.wait_stream(main)
    with torch.cuda.stream(side):
        metrics = train_step(state, real, labels)
    main.wait_stream(side)
    return metrics

