"""SIGINT (Ctrl-C, a notebook's interrupt button) and SIGTERM (schedulers, `kill`) during training.

The first signal is only noted; the training loop then saves a checkpoint at the end of the current step and
stops. A second one acts as usual (KeyboardInterrupt, or termination), for a user who will not wait; the files
stay whole since every write is atomic. Under torchrun, which forwards a signal it receives to every process,
all signals are noted until the ranks agree to stop together.
"""

from __future__ import annotations

import signal
import threading

CAUGHT = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context manager noting SIGINT / SIGTERM while it is active (in the main thread; elsewhere inert)."""

    def __init__(self, keep_catching: bool = False):
        self.keep_catching = keep_catching  # torchrun: later signals are noted too, never fatal
        self.received: int = 0  # the first signal's number; 0 while none came
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self.note) for number in CAUGHT}
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore()

    def note(self, number: int, frame) -> None:
        self.received = self.received or number
        if not self.keep_catching:
            self.restore()

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as shells report a signalled program."""
        return 128 + self.received
