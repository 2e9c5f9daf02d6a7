"""SIGINT (Ctrl-C, a notebook's interrupt button), SIGTERM (schedulers, `kill`) and a closed stdout.

While a run starts (decoding the data can take minutes), a signal ends it at once with one line, as an exception,
so that files half-written on the way are removed. During training the first signal is only noted; the training
loop then saves a checkpoint at the end of the current step and stops. A second one acts as usual
(KeyboardInterrupt, or termination), for a user who will not wait; the files stay whole since every write is
atomic. Under torchrun, which forwards a signal it receives to every process, all signals are noted until the
ranks agree to stop together. A stdout closed under the run (`train ... | head -n 1`) counts as SIGPIPE.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ..errors import TrainingStopped

CAUGHT = (signal.SIGINT, signal.SIGTERM)
SIGPIPE = getattr(signal, "SIGPIPE", 13)


@contextlib.contextmanager
def signals_raise(what: str) -> Iterator[None]:
    """SIGINT / SIGTERM inside the block raise TrainingStopped saying that nothing was saved (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame) -> None:
        raise TrainingStopped(f"stopped by {signal.Signals(number).name} while {what}: the run's files are as they "
                              "were; run the command again", exit_code=128 + number)

    previous = {number: signal.signal(number, stop) for number in CAUGHT}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def silence_stdout() -> None:
    """Point stdout at the null device, so that nothing more fails on a closed pipe (interpreter exit included)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured): nothing to silence
        pass


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

    def stdout_closed(self) -> None:
        """A write to stdout met a closed pipe: stdout is silenced, and the run stops as on SIGPIPE."""
        silence_stdout()
        self.received = self.received or SIGPIPE

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    @property
    def name(self) -> str:
        if self.received == SIGPIPE:
            return "a closed stdout"
        return signal.Signals(self.received).name if self.received else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as shells report a signalled program."""
        return 128 + self.received
