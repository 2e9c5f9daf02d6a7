"""The package's messages as a notebook shows them. A message names the command line's flags (`--resume`,
`--batch-size`); a notebook's parameters cell names the same settings as TrainConfig's fields (`resume = True`,
`batch_size`), so `in_parameter_words` turns one into the other. `%load_ext dcgan` (load_ipython_extension) shows
a mistake or a stop raised in a cell as one such line instead of a traceback through the package."""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import Any

from ..config import CHOICES, PARTS, TrainConfig
from ..errors import TrainingStopped, UserError
from ..registry import DATASETS

# --flag, --no-flag, optionally followed by a value (a number, or a name written in lower case: fp32, wgan-gp)
FLAG = re.compile(r"(?<![\w-])--(no-)?([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?: (-?[0-9][0-9.e+-]*|[a-z][a-z0-9_-]*))?")
VERB = re.compile(r"\b(?:pass|add|use) (?=--)")  # "pass --resume" reads "set resume = True"
EXTRA = {"checkpoint": "", "count": 0}  # notebook parameters beyond the config's that messages name
SIGNALS = {"SIGINT": "the interrupt (■)", "SIGTERM": "SIGTERM"}


def parameter_defaults() -> dict[str, object]:
    """Every setting a notebook or a Python caller can name, with its default (its type)."""
    return {spec.name: spec.default for spec in dataclasses.fields(TrainConfig)} | EXTRA


def in_parameter_words(message: str) -> str:
    """`message` with every flag of a setting written as the parameter: `--resume` -> `resume = True`,
    `--no-tensorboard` -> `tensorboard = False`, `--loss hinge` -> `loss = "hinge"`, `--batch-size` -> `batch_size`;
    anything else (paths, other words) is left as it is."""
    known = parameter_defaults()

    def spoken(match: re.Match) -> str:
        negated, name, value = match.group(1), match.group(2).replace("-", "_"), match.group(3)
        if name not in known:
            return match.group(0)
        rest = f" {value}" if value is not None else ""
        default = known[name]
        if isinstance(default, bool):
            return f"{name} = {not negated}{rest}"
        if value is None or not names_a_value(name, default, value):
            return f"{name}{rest}"
        return f"{name} = {value}" if isinstance(default, (int, float)) else f'{name} = "{value}"'

    message = VERB.sub(lambda verb: "set ", message)
    message = FLAG.sub(spoken, message)
    message = message.replace("run the command again", "run the cell again")
    return re.sub(r"\bby (SIGINT|SIGTERM)\b", lambda m: f"by {SIGNALS[m.group(1)]}", message)


def names_a_value(name: str, default: object, value: str) -> bool:
    """Whether the word after a flag is its value: a number for a number setting, one of its words or registered
    names for a text setting (`--loss hinge`, not `--run name`)."""
    if isinstance(default, bool) or not isinstance(default, (int, float, str)):
        return False
    if isinstance(default, (int, float)):
        return bool(re.fullmatch(r"-?[0-9][0-9.e+-]*", value))
    registry = {**PARTS, "arch": PARTS["generator"], "data": DATASETS}.get(name)
    return value in CHOICES.get(name, ()) or (registry is not None and value in registry.names)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext dcgan`: a UserError (a mistake the parameters can fix) or a TrainingStopped (a signal, non-finite
    losses) raised in a cell shows as one line naming the parameters. The cell still fails, so Run All stops
    there; every other error keeps its traceback."""
    ipython.set_custom_exc((UserError, TrainingStopped), show_one_line)


def show_one_line(shell: Any, kind: type, error: BaseException, traceback: Any, tb_offset: int | None = None) -> None:
    """IPython's handler of the package's errors: one line, as the cell's error output (where the shell can send
    one), else on stderr."""
    line = f"{'error' if isinstance(error, UserError) else 'stopped'}: {in_parameter_words(str(error))}"
    send = getattr(shell, "_showtraceback", None)  # how IPython sends a cell's error (a traceback of one line)
    if send is not None:
        send(kind, error, [f"\x1b[0;31m{line}\x1b[0m"])
    else:
        print(line, file=sys.stderr)
