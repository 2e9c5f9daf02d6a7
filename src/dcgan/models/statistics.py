"""Statistics reported by name from anywhere in a training step, as stylegan2-ada's `training_stats.report`.

    from dcgan import report
    report("r1_penalty", penalty)          # in a loss, a network's forward, or the step itself

The step reports loss_D, loss_G, D_x and D_G_z this way; a loss or a network reports its own values the same
way. Each name then appears in the progress bar, the epoch line, history.csv, TensorBoard and losses.png with no
other edit (training/history.py says how a name is shown). A value is kept on its device (no host sync): a tensor
gives its mean, a number is put on the step's device (a number is the same in every replay of a CUDA graph, so
report tensors). A name reported several times in one step gives the mean of its values. Outside a training step
`report` does nothing, so a network that reports can be called anywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from numbers import Real

import torch

from ..errors import UserError

Statistics = dict[str, torch.Tensor]  # what a step reports: name -> a 0-d float32 tensor on its device
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")  # a column of history.csv, a TensorBoard tag


class Collector:
    """The values reported during one step, by name, in the order first reported."""

    def __init__(self, device: torch.device):
        self.device = device
        self.values: dict[str, list[torch.Tensor]] = {}

    def add(self, name: str, value: torch.Tensor | float) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean().to(self.device)  # (a tensor of its own: mean makes a new one)
        elif isinstance(value, Real) and not isinstance(value, bool):
            value = torch.full((), float(value), device=self.device)
        else:
            raise UserError(f"report({name!r}, ...) takes a tensor or a number, not {type(value).__name__}")
        self.values.setdefault(name, []).append(value)

    def statistics(self) -> Statistics:
        return {name: values[0] if len(values) == 1 else torch.stack(values).mean()
                for name, values in self.values.items()}


ACTIVE: list[Collector] = []  # the collector of the step in progress (a list: nothing while no step runs)


def report(name: str, value: torch.Tensor | float) -> None:
    """Report a scalar statistic of the step in progress under `name` (letters, digits and _, at most 40)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"report({name!r:.50}, ...): a statistic's name is a letter then letters, digits or _ (at "
                        "most 40), e.g. report('r1_penalty', penalty)")
    if ACTIVE:
        ACTIVE[-1].add(name, value)


@contextlib.contextmanager
def reporting(device: torch.device) -> Iterator[Collector]:
    """Collect what is reported inside the block; `.statistics()` gives it afterwards."""
    collector = Collector(device)
    ACTIVE.append(collector)
    try:
        yield collector
    finally:
        ACTIVE.remove(collector)
