"""How each training step runs: eagerly, or from CUDA graphs (graphs.py); and with --compile, the first
steps guarded, so that a compiler failure costs one line and a restart of that step with the plain networks,
never a traceback.

A guarded step first copies the weights, optimizer states and random streams; when the compiled networks
raise, the copy is put back (the failed step may have half-updated D) and the step runs again uncompiled, so
the run is the one an uncompiled run would have trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from ..errors import first_line
from .graphs import WARMUP_G_STEPS, GraphedSteps
from .snapshot import restore_snapshot, take_snapshot
from .state import TrainState
from .step import train_step

GUARDED_G_STEPS = 2  # compiled steps of each kind that run guarded (compilation happens in the first ones)


class StepRunner:
    """`runner(real, labels)` trains one step of `state` and returns its metrics (on the device)."""

    def __init__(self, state: TrainState, log: Callable[[str], None]):
        # a guarded step that fails is undone by restoring tensors in place; after a capture, a graph would keep
        # writing the tensors a failed step had, so every guarded step must come before the capture
        assert GUARDED_G_STEPS < WARMUP_G_STEPS, "the compile guard must end before the graphs are captured"
        self.state, self.log = state, log
        self.graphed = GraphedSteps(state, log) if state.plan.cuda_graphs else None
        self.guard_left = GUARDED_G_STEPS * state.cfg.n_critic if state.plan.compile else 0

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.guard_left:
            self.guard_left -= 1
            return self.guarded(real, labels)
        return self.plain(real, labels)

    def plain(self, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.graphed is None:
            return train_step(self.state, real, labels)
        return self.graphed(real, labels)

    def guarded(self, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        saved = take_snapshot(self.state)
        try:
            return self.plain(real, labels)
        except Exception as error:  # noqa: BLE001 (a compiler failure can be any exception)
            restore_snapshot(self.state, saved)
            uncompile(self.state)
            self.log(f"torch.compile failed ({type(error).__name__}: {first_line(error)[:160]}); training goes on "
                     "with the plain networks")
            self.guard_left = 0
            return self.plain(real, labels)


def uncompile(state: TrainState) -> None:
    """Call the networks (or their DDP wrappers) as they were before torch.compile."""
    for name in ("g_forward", "d_forward", "d_forward_for_g"):
        compiled = getattr(state, name)
        setattr(state, name, getattr(compiled, "_orig_mod", compiled))
    state.plan = dataclasses.replace(state.plan, compile=False)
