"""Checks of single values at the door, shared by the flags, the notebooks' parameters and saved checkpoints:
numbers in range and finite, run names that are plain folder names. A failure is a SettingError naming the
setting and what to do."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .errors import SettingError

RUN_NAME = re.compile(r"\w[\w.-]*")  # letters (any script), digits, _, then also . and -
RUN_NAME_MAX = 100  # characters; the folder name stays far below the file system's 255 bytes


def check_number(setting: str, value: float, low: float, high: float | None = None, flag: str = "") -> None:
    """`value` is finite and within [low, high] (no upper bound when `high` is None)."""
    flag = flag or f"--{setting.replace('_', '-')}"
    if not math.isfinite(value):
        raise SettingError(setting, f"{flag} must be a finite number, got {value}")
    if value < low:
        floor = "0 or more" if low == 0 else f"at least {low}"
        raise SettingError(setting, f"{flag} must be {floor}, got {value}")
    if high is not None and value > high:
        raise SettingError(setting, f"{flag} must be at most {high:,}, got {value:,}: lower it")


def check_run_name(run: str, flag: str = "--run") -> None:
    """A run name is one plain folder name: it can never point outside samples/ or checkpoints/."""
    if not RUN_NAME.fullmatch(run) or len(run) > RUN_NAME_MAX:
        shown = run if len(run) <= 40 else run[:40] + "..."
        raise SettingError("run", f"run name {shown!r} is not a plain folder name: use up to {RUN_NAME_MAX} letters, "
                           f"digits, '-', '_' or '.', starting with a letter or digit ({flag})")


def check_folder(flag: str, value: str) -> None:
    """A folder setting names a folder, or a path where one can be made; not a file."""
    if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
        raise SettingError(flag.lstrip("-").replace("-", "_"), f"{flag} {value} is a file, not a folder: name a "
                           "folder (it is made when missing)")


def check_places(settings: Any) -> None:
    """The folder settings (--data-dir, --samples-dir, --checkpoints-dir, --logdir) that `settings` (a TrainConfig,
    or a command's parsed flags) has, before anything is written."""
    for name in ("data_dir", "samples_dir", "checkpoints_dir", "logdir"):
        check_folder(f"--{name.replace('_', '-')}", getattr(settings, name, ""))
