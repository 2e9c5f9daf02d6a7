"""Checks of single values at the door, shared by the flags, the notebooks' parameters and saved checkpoints:
numbers in range and finite, run names that are plain folder names. A failure is a SettingError naming the
setting and what to do."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from .errors import SettingError

RUN_NAME = re.compile(r"\w[\w.-]*")  # letters (any script), digits, _, then also . and -
RUN_NAME_MAX = 100  # characters; the folder name stays far below the file system's 255 bytes
NAME_MAX = 255  # bytes in one file or folder name (Linux, macOS, Windows)
PATH_MAX = 4096  # bytes in a path the system opens, its final NUL included (Linux; shorter elsewhere)


def check_number(setting: str, value: float, low: float, high: float | None = None, flag: str = "") -> None:
    """`value` is finite and within [low, high] (no upper bound when `high` is None), whatever its size: a whole
    number of 400 digits is compared as it is, never turned into a float."""
    flag = flag or f"--{setting.replace('_', '-')}"
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingError(setting, f"{flag} must be a finite number, got {value}")
    if value < low:
        floor = "0 or more" if low == 0 else f"at least {low}"
        raise SettingError(setting, f"{flag} must be {floor}, got {shown_number(value)}")
    if high is not None and value > high:
        raise SettingError(setting, f"{flag} must be at most {high:,}, got {shown_number(value)}: lower it")


def shown_number(value: float) -> str:
    """A number for a message: in full, or its first digits and its length when it is long (an int of thousands
    of digits is never turned into text: Python refuses to above 4,300)."""
    if isinstance(value, int) and value.bit_length() > 80:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else int(value.bit_length() * 0.30103) + 1
        leading = str(abs(value))[:11] if value.bit_length() < 14_000 else ""
        return f"{'-' if value < 0 else ''}{leading or 'a number of'}... ({digits:,} digits)"
    return f"{value:,}"


def check_run_name(run: str, flag: str = "--run") -> None:
    """A run name is one plain folder name: it can never point outside samples/ or checkpoints/."""
    if not RUN_NAME.fullmatch(run) or len(run) > RUN_NAME_MAX:
        shown = run if len(run) <= 40 else run[:40] + "..."
        raise SettingError("run", f"run name {shown!r} is not a plain folder name: use up to {RUN_NAME_MAX} letters, "
                           f"digits, '-', '_' or '.', starting with a letter or digit ({flag})")


def check_path(flag: str, value: str) -> None:
    """A path the user gave is one the system can open: no name in it longer than NAME_MAX bytes, the whole
    shorter than PATH_MAX (the system refuses both, and Python's is_dir() and exists() then raise)."""
    raw = os.fsencode(os.path.expanduser(value))
    longest = max(len(name) for name in raw.split(b"/"))
    shown = value if len(value) <= 40 else value[:40] + "..."
    if longest > NAME_MAX:
        raise SettingError(setting_of(flag), f"{flag} {shown} holds a name of {longest:,} bytes, longer than the "
                           f"{NAME_MAX} a file system allows: choose a shorter name")
    if len(raw) >= PATH_MAX:
        raise SettingError(setting_of(flag), f"{flag} {shown} is {len(raw):,} bytes long, beyond the system's path "
                           f"limit of {PATH_MAX:,}: choose a shorter path")


def check_folder(flag: str, value: str, writes: bool = False) -> None:
    """A folder setting names a folder, or a path where one can be made: not a file, nor anything under a file;
    with `writes`, where this process can write (not a read-only mount)."""
    if not value:
        return
    check_path(flag, value)
    path = Path(value).expanduser()
    setting = setting_of(flag)
    existing = next(folder for folder in (path, *path.parents) if folder.exists())  # "/" at the latest
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under {existing}, which is a file"
        raise SettingError(setting, f"{flag} {value} {where}, not a folder: name a folder (it is made when missing)")
    if writes and not os.access(existing, os.W_OK):
        raise SettingError(setting, f"{flag} {value} cannot be written ({existing} is read-only to this process): "
                           "name a folder you can write, or make it writable")


def check_places(settings: Any, folders: tuple[str, ...], files: tuple[str, ...] = ()) -> None:
    """The folder settings `folders` (config.fields_with("place", "folder"): --data-dir, --samples-dir, ...) and
    file settings `files` (--checkpoint, ...) that `settings` (a TrainConfig, or a command's parsed flags) has,
    before anything is read or written."""
    for name in folders:
        check_folder(f"--{name.replace('_', '-')}", getattr(settings, name, ""))
    for name in files:
        if getattr(settings, name, ""):
            check_path(f"--{name.replace('_', '-')}", getattr(settings, name))


def check_run_folders(run_folders: dict[str, Path], protected: dict[str, Path]) -> None:
    """Refuse, before anything is written, a run folder (flag -> folder) that is, contains or lies inside the
    other run folder or a protected one (words -> folder: the data, the checkout's source folders): the run's
    files would mix with them, and --overwrite would delete among them."""
    named = list(run_folders.items())
    for index, (flag, folder) in enumerate(named):
        others = {**{f"the run's other folder ({other_flag})": other for other_flag, other in named[index + 1:]},
                  **protected}
        for words, other in others.items():
            relation = nesting(Path(folder), Path(other))
            if relation:
                raise SettingError(setting_of(flag), f"the run folder {folder} {relation} {words}, "
                                   f"{other}: choose another {flag} or --run name (a run's folder holds only its own "
                                   "files)")


def setting_of(flag: str) -> str:
    """The setting a flag sets: --samples-dir -> samples_dir."""
    return flag.lstrip("-").replace("-", "_")


def nesting(folder: Path, other: Path) -> str:
    """How `folder` lies against `other` once links are resolved: "is", "lies inside", "contains", or ""."""
    folder, other = folder.expanduser().resolve(), other.expanduser().resolve()
    if folder == other:
        return "is"
    if other in folder.parents:
        return "lies inside"
    return "contains" if folder in other.parents else ""
