"""How each training step executes: eagerly, from whole-step CUDA graphs, or compiled; and how each checks itself.

Eager (the CPU, and --cuda-graphs off without --compile): the loop calls step.train_step itself.
Graphs (CUDA, one process): the first steps run eagerly on a side stream (cuDNN autotuning, the optimizers'
state, the gradients all allocated), then `train_step` is captured once per kind of step (the D step, and with
n_critic > 1 the D + G step, which shares the first graph's memory pool), and from then on each batch is copied
into a static input and the graph replayed (graphs.py holds the mechanics). At batch 128 a DCGAN step is a few
hundred small kernels, and launching them costs more than running them (docs/benchmarks.md).
Their self-check: on CUDA, the first replay of each kind, and one again RECHECK_AFTER replays later, is run
twice from the same state, replayed and eager (snapshot.compare_steps). When they agree the run goes on from the
eager result and says so in one line; when they differ, when that replay raises, or when a capture fails, it says
so in one line and trains eagerly from then on. A checked replay's outcome is a `graph_check` row of the history.
A failed capture gives its memory back and leaves the allocator as it was (graphs.CapturePool), so a later run in
the same process (a notebook's next cell) captures again; where this torch cannot, the line says to restart.

Compiled (--compile): the first steps are guarded. A guarded step first copies the weights, optimizer states and
random streams; when the compiled networks raise, the copy is put back (the failed step may have half-updated D)
and the step runs again uncompiled, so a compiler failure costs one line, never a traceback, and the run is the
one an uncompiled run would have trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from ..errors import first_line
from ..models.statistics import Statistics
from .graphs import (
    Captured,
    CapturePool,
    capturable_warning_hidden,
    capture_pool,
    checks_replays,
    cuda_capture,
    first_cause,
    revive_generators,
)
from .history import graph_check_row
from .snapshot import TOLERANCES, compare_steps, restore_snapshot, take_snapshot
from .state import RunSetup, TrainState, rank_streams
from .step import is_g_step, train_step

WARMUP_G_STEPS = 3  # eager steps of each kind before capture (the count PyTorch's examples use)
RECHECK_AFTER = 100  # replays of a kind between its first checked replay and its second
LEFT_CAPTURING = ("; torch left its CUDA memory allocator capturing, so cached memory is not freed and no later "
                  "capture in this process works: restart the process (in a notebook, the kernel) to use CUDA graphs "
                  "again, or train with --cuda-graphs off")
GUARDED_G_STEPS = 2  # compiled steps of each kind that run guarded (compilation happens in the first ones)
Log = Callable[[str], None]
Runner = Callable[..., Statistics]  # runner(state, real, labels) trains one step and returns its statistics


def step_runner(setup: RunSetup, log: Log) -> Runner:
    """What runs each step: train_step itself, or with CUDA graphs or torch.compile a StepRunner around it."""
    return StepRunner(setup, log) if setup.plan.cuda_graphs or setup.plan.compile else train_step


class StepRunner:
    """`runner(state, real, labels)` trains one step of the run and returns its statistics (on the device)."""

    def __init__(self, setup: RunSetup, log: Log):
        # a guarded step that fails is undone by restoring tensors in place; after a capture, a graph would keep
        # writing the tensors a failed step had, so every guarded step must come before the capture
        assert GUARDED_G_STEPS < WARMUP_G_STEPS, "the compile guard must end before the graphs are captured"
        self.log = log
        self.graphed = GraphedSteps(setup, log) if setup.plan.cuda_graphs else None
        self.guard_left = GUARDED_G_STEPS * setup.cfg.n_critic if setup.plan.compile else 0

    def __call__(self, state: TrainState, real: torch.Tensor, labels: torch.Tensor | None = None) -> Statistics:
        if self.guard_left:
            self.guard_left -= 1
            return self.guarded(state, real, labels)
        return self.plain(state, real, labels)

    def plain(self, state: TrainState, real: torch.Tensor, labels: torch.Tensor | None) -> Statistics:
        if self.graphed is None:
            return train_step(state, real, labels)
        return self.graphed(state, real, labels)

    def guarded(self, state: TrainState, real: torch.Tensor, labels: torch.Tensor | None) -> Statistics:
        saved = take_snapshot(state)
        try:
            return self.plain(state, real, labels)
        except Exception as error:  # noqa: BLE001 (a compiler failure can be any exception)
            restore_snapshot(state, saved)
            uncompile(state)
            self.log(f"torch.compile failed ({type(error).__name__}: {first_line(error)[:160]}); training goes on "
                     "with the plain networks")
            self.guard_left = 0
            return self.plain(state, real, labels)


def uncompile(state: TrainState) -> None:
    """Call the networks (or their DDP wrappers) as they were before torch.compile."""
    nets = state.nets
    for name in ("g_forward", "d_forward", "d_forward_for_g"):
        compiled = getattr(nets, name)
        setattr(nets, name, getattr(compiled, "_orig_mod", compiled))
    state.setup.plan = dataclasses.replace(state.setup.plan, compile=False)


class CaptureFailed(Exception):
    """Capturing the step raised; the run continues eagerly (the message says why). `given_back`: the allocator is
    capturing no more."""

    def __init__(self, message: str, given_back: bool):
        super().__init__(message)
        self.given_back = given_back


class GraphedSteps:
    """Runs each step: eagerly until warm, then replayed from its graph; eagerly again for good when a capture
    fails or a checked replay differs from the eager step."""

    def __init__(self, setup: RunSetup, log: Log):
        self.log = log
        self.warmup_steps = WARMUP_G_STEPS * setup.cfg.n_critic  # every kind of step runs a few times
        self.eager_done = 0
        self.replayed = 0  # steps replayed from a graph
        self.graphs: dict[bool, Captured] = {}  # g_step -> its graph
        self.pool: CapturePool | None = None  # the memory every graph captures into
        self.replays_of: dict[bool, int] = {False: 0, True: 0}  # g_step -> replays of that kind so far
        self.check = checks_replays(setup.device)
        self.off = False  # a capture failed or a replay differed: eager from now on
        self.real: torch.Tensor | None = None  # the static inputs every replay reads
        self.labels: torch.Tensor | None = None

    def __call__(self, state: TrainState, real: torch.Tensor, labels: torch.Tensor | None = None) -> Statistics:
        if self.off:
            with capturable_warning_hidden():
                return train_step(state, real, labels)
        if self.eager_done < self.warmup_steps:
            values = warm_up_step(state, real, labels)
            self.eager_done += 1  # (counted once it succeeded: a step the compile guard redoes counts once)
            return values
        g_step = is_g_step(state)
        if self.real is None:
            self.real = torch.empty_like(real)  # keeps the batch's layout (channels-last)
            self.labels = None if labels is None else torch.empty_like(labels)
        self.real.copy_(real)
        if labels is not None:
            self.labels.copy_(labels)
        if g_step not in self.graphs:
            try:
                self.graphs[g_step] = self.captured(state, g_step)
            except CaptureFailed as failure:
                self.turn_off(f"capturing the step failed ({failure}); training goes on eagerly"
                              + ("" if failure.given_back else LEFT_CAPTURING))
                return self(state, real, labels)
        done = self.replays_of[g_step]
        self.replays_of[g_step] += 1
        self.replayed += 1
        if self.check and done in (0, RECHECK_AFTER):
            return self.checked_replay(state, g_step)
        return copied(self.graphs[g_step].replay())

    def captured(self, state: TrainState, g_step: bool) -> Captured:
        """The step of this kind captured (nothing runs yet); CaptureFailed, with every random stream as it was,
        when it cannot be."""
        streams = rank_streams(state)
        if self.pool is None:
            self.pool = capture_pool(state.setup.device)
        try:
            return cuda_capture(lambda: train_step(state, self.real, self.labels), state.progress.noise_rng,
                                self.pool.handle)
        except Exception as error:  # noqa: BLE001 (whatever the capture raised, the run goes on eagerly)
            device = state.setup.device
            if device.type == "cuda":  # a capture that failed at its end leaves its own stream current
                torch.cuda.set_stream(torch.cuda.default_stream(device))
            revive_generators(state, streams)
            state.nets.discriminator.requires_grad_(True)
            raise CaptureFailed(described(first_cause(error)), given_back=self.pool.give_back()) from None

    def checked_replay(self, state: TrainState, g_step: bool) -> Statistics:
        """Replay, then run the same step eagerly from the same state and compare; go on from the eager result."""
        before = take_snapshot(state)
        kind = "the D step" if not g_step else "the D + G step" if state.cfg.n_critic > 1 else "the step"
        try:
            replayed_values = copied(self.graphs[g_step].replay())
            replayed = take_snapshot(state)
        except Exception as error:  # noqa: BLE001 (whatever the replay raised, the run goes on eagerly)
            restore_snapshot(state, before)
            state.history.append(graph_check_row(state.epoch + 1, state.step + 1, "failed", float("nan")))
            self.turn_off(f"replaying {kind} failed at step {state.step + 1} ({described(error)}); training goes "
                          "on eagerly")
            with capturable_warning_hidden():
                return train_step(state, self.real, self.labels)
        restore_snapshot(state, before)
        with capturable_warning_hidden():
            values = train_step(state, self.real, self.labels)
        verdict = compare_steps(state, before, replayed, replayed_values, values,
                                TOLERANCES["bf16" if state.setup.plan.bf16 else "fp32"])
        state.history.append(graph_check_row(state.epoch + 1, state.step + 1,
                                             "match" if verdict.matches else "differs", verdict.difference))
        if verdict.matches:
            self.log(f"CUDA graphs: replay matches the eager step (largest difference: {verdict.largest}; "
                     f"{kind}, step {state.step + 1})")
        else:
            self.turn_off(f"the replay of {kind} differs from the eager step at step {state.step + 1} "
                          f"({verdict.largest}); training goes on eagerly")
        return values

    def turn_off(self, why: str) -> None:
        self.off = True
        self.graphs.clear()
        self.log(f"CUDA graphs off: {why}")


def described(error: BaseException) -> str:
    return f"{type(error).__name__}: {first_line(error)}"[:200]


def copied(values: Statistics) -> Statistics:
    """A replay's statistics, copied out of the graph's outputs (the next replay overwrites those): one kernel."""
    return dict(zip(values, torch.stack(list(values.values())).unbind()))


def warm_up_step(state: TrainState, real: torch.Tensor, labels: torch.Tensor | None) -> Statistics:
    """An eager step; on CUDA on a side stream, as capture requires of the work before it."""
    device = state.setup.device
    with capturable_warning_hidden():
        if device.type != "cuda":
            return train_step(state, real, labels)
        main, side = torch.cuda.current_stream(device), torch.cuda.Stream(device)
        side.wait_stream(main)
        try:
            with torch.cuda.stream(side):
                return train_step(state, real, labels)
        finally:
            main.wait_stream(side)
