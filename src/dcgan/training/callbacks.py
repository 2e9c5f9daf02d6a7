"""Callbacks: how a notebook or a script watches training without the loop knowing about it.

A callback is any object with some of these methods, each called with the run's TrainState:
    on_train_start   the run is set up (a fresh run's epoch_000.png is written)
    on_step_end      after every step (metrics are not read here: no host sync)
    on_log           every log_every steps; state.last_row holds the new history row
    on_epoch_end     the epoch's grid and checkpoint are written
    on_train_end     the last epoch is done
Subclassing Callback is optional; it only documents the events (training/loop.py emits them).
"""

from __future__ import annotations

from .state import TrainState


class Callback:
    """Base class for training callbacks; override the events you need (all optional)."""

    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_log(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

