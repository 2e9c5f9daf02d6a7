"""How each training step runs: eagerly, or from CUDA graphs (graphs.py); and with --compile, the first
steps guarded, so that a compiler failure costs one line and a restart of that step with the plain networks,
never a traceback.

A guarded step first copies the weights, optimizer states and random streams; when the compiled networks
raise, the copy is put back (the failed step may have half-updated D) and the step runs again uncompiled, so
the run is the one an uncompiled run would have trained.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch

from ..errors import first_line
from .graphs import CaptureFailed, GraphedSteps
from .state import TrainState, rank_streams, set_rank_streams
from .step import train_step

GUARDED_G_STEPS = 2  # compiled steps of each kind that run guarded (compilation happens in the first ones)


class StepRunner:
    """`runner(real, labels)` trains one step of `state` and returns its metrics (on the device)."""

    def __init__(self, state: TrainState, log: Callable[[str], None]):
        self.state, self.log = state, log
        self.graphed = GraphedSteps(state) if state.plan.cuda_graphs else None
        self.guard_left = GUARDED_G_STEPS * state.cfg.n_critic if state.plan.compile else 0

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.guard_left:
            self.guard_left -= 1
            return self.guarded(real, labels)
        return self.plain(real, labels)

    def plain(self, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.graphed is None:
            return train_step(self.state, real, labels)
        try:
            return self.graphed(real, labels)
        except CaptureFailed as failure:
            self.graphed = None
            self.log(f"CUDA graphs off: capturing the step failed ({failure}); training goes on eagerly")
            return train_step(self.state, real, labels)

    def guarded(self, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        saved = snapshot(self.state)
        try:
            return self.plain(real, labels)
        except Exception as error:  # noqa: BLE001 (a compiler failure can be any exception)
            restore(self.state, saved)
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


def snapshot(state: TrainState) -> dict:
    """Copies of what a step changes: weights and buffers, optimizer states, random streams."""
    networks = {name: net for name, net in (("generator", state.generator), ("discriminator", state.discriminator),
                                            ("ema", state.ema_generator)) if net is not None}
    return {"networks": {name: {key: value.clone() for key, value in net.state_dict().items()}
                         for name, net in networks.items()},
            "optimizers": [copy.deepcopy(opt.state_dict()) for opt in (state.opt_g, state.opt_d)],
            "streams": rank_streams(state)}


def restore(state: TrainState, saved: dict) -> None:
    networks = {"generator": state.generator, "discriminator": state.discriminator, "ema": state.ema_generator}
    with torch.no_grad():
        for name, values in saved["networks"].items():
            networks[name].load_state_dict(values)
    for optimizer, values in zip((state.opt_g, state.opt_d), saved["optimizers"]):
        optimizer.load_state_dict(values)
        optimizer.zero_grad(set_to_none=True)
    set_rank_streams(state, saved["streams"])
    state.discriminator.requires_grad_(True)
