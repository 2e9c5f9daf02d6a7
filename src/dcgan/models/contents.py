"""What a loaded checkpoint must hold, checked before any of it is used.

`weights_only=True` keeps code out of a checkpoint, not bad values: a file may be altered or written by another
program. Its config passes the same checks as the flags (types, ranges, choices, a plain run name); the
bookkeeping is checked by type and shape; every tensor must have the dtype the networks and optimizers are
built with (float32, or int64 for counts: nothing is cast, so nothing can overflow into an infinity) and be
finite. The first problem is a UserError naming the file and the field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..config import PARTS, TrainConfig, fields_with
from ..errors import SettingError, UserError
from ..registry import REGISTERED_NAME, is_object_name

NETWORKS = ("generator", "discriminator", "generator_ema")
COUNTERS = ("epoch", "step", "epoch_step")
MAX_COUNT = 10**15  # epochs or steps: far beyond any run
STREAMS = ("data", "noise", "torch_cpu", "torch_cuda")  # random generators' states: 1-D uint8 tensors
DTYPES = (torch.float32, torch.int64)  # what G, D and Adam hold: weights and moments; BatchNorm's batch counts


class BadField(Exception):
    """One field of a checkpoint holds what it must not; the message says what."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")


def checked_config(payload: dict[str, Any], path: Path) -> TrainConfig:
    """The checkpoint's config, validated like the flags; its folders (where the saving machine kept things) are
    dropped, so that nothing a file says can choose where this machine reads or writes."""
    values = payload["config"]
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise refusal(path, BadField("config", "is not a table of settings"))
    known = {spec.name for spec in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"checkpoint {path} has unknown setting(s) {', '.join(unknown)[:80]}: it was saved by a "
                        "newer dcgan (update the package) or altered")
    try:
        cfg = TrainConfig(**values).validate()
        cfg.check_parts()  # registered names, and sizes their specs support
    except SettingError as error:
        value = values.get(error.setting)
        if error.setting in (*PARTS, "arch") and isinstance(value, str) and REGISTERED_NAME.fullmatch(value):
            how = f"dcgan.register_{'generator' if error.setting == 'arch' else error.setting}"
            raise UserError(f"checkpoint {path}: config.{error.setting} '{value}' is not registered in this process "
                            f"({error}): register it again first ({how}), or the file was altered: use another "
                            "checkpoint") from None
        raise refusal(path, BadField(f"config.{error.setting}", f"is unusable ({error})")) from None
    return dataclasses.replace(cfg, **{name: "" for name in fields_with("place")})


def check_contents(payload: dict[str, Any], path: Path) -> TrainConfig:
    """Refuse a checkpoint whose fields are of the wrong type or shape, or whose weights are not finite; return its
    config, checked."""
    cfg = checked_config(payload, path)
    try:
        check_counters(payload)
        check_noise(payload["fixed_noise"], cfg.nz)
        check_streams(payload["rng"])
        check_history(payload["history"])
        check_means(payload.get("means"))
        check_given(payload.get("given"), cfg)
        for name in NETWORKS:
            if name in payload or name != "generator_ema":
                check_weights(name, payload[name])
        for name in ("optimizer_g", "optimizer_d"):
            check_optimizer(name, payload[name])
    except BadField as problem:
        raise refusal(path, problem) from None
    return cfg


def refusal(path: Path, problem: BadField) -> UserError:
    return UserError(f"checkpoint {path}: {problem}; it was altered or written by another program: use another "
                     "checkpoint")


def check_counters(payload: dict[str, Any]) -> None:
    """Epochs and steps done: whole numbers, 0 or more."""
    for name in COUNTERS:
        value = payload.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
            raise BadField(name, f"is {shown(value)}, not a whole number from 0 to {MAX_COUNT:,}")
    if payload.get("epoch_step", 0) > payload["step"]:
        raise BadField("epoch_step", "is larger than step")


def check_noise(noise: Any, nz: int) -> None:
    """The grid's fixed noise: (N, nz) finite float32 numbers."""
    if not isinstance(noise, torch.Tensor) or noise.dtype != torch.float32:
        raise BadField("fixed_noise", f"is {shown(noise)}, not a tensor of float32 numbers")
    if noise.dim() != 2 or noise.shape[1] != nz or not 0 < noise.shape[0] <= 100_000:
        raise BadField("fixed_noise", f"has shape {tuple(noise.shape)}, not (N, {nz}) for config.nz = {nz}")
    if not torch.isfinite(noise).all():
        raise BadField("fixed_noise", "holds NaN or infinite values")


def check_streams(rng: Any) -> None:
    """The random streams: generator states (1-D uint8 tensors) by name, and per rank under "ranks"."""
    if not isinstance(rng, dict) or "data" not in rng:
        raise BadField("rng", "is not a table of random generator states")
    if rng.get("noise_device", "cpu") not in ("cpu", "cuda"):
        raise BadField("rng.noise_device", f"is {shown(rng.get('noise_device'))}, not cpu or cuda")
    ranks = rng.get("ranks", [])
    if not isinstance(ranks, list) or not all(isinstance(streams, dict) for streams in ranks):
        raise BadField("rng.ranks", "is not a list of tables")
    for where, streams in [("rng", rng), *((f"rng.ranks[{i}]", streams) for i, streams in enumerate(ranks))]:
        for name in STREAMS:
            state = streams.get(name)
            if name in streams and not (isinstance(state, torch.Tensor) and state.dtype == torch.uint8
                                        and state.dim() == 1):
                raise BadField(f"{where}.{name}", f"is {shown(state)}, not a random generator state")


def check_history(history: Any) -> None:
    """Rows of names and numbers (or the kind of row)."""
    if not isinstance(history, list):
        raise BadField("history", f"is {shown(history)}, not a list of rows")
    for index, row in enumerate(history):
        if not isinstance(row, dict) or not all(isinstance(key, str) and isinstance(value, (int, float, str))
                                                for key, value in row.items()):
            raise BadField(f"history[{index}]", "is not a row of names and numbers")


def check_means(means: Any) -> None:
    """The running means of an unfinished epoch and log window (absent in older checkpoints)."""
    if means is None:
        return
    for part in ("epoch", "window"):
        saved = means.get(part) if isinstance(means, dict) else None
        if not (isinstance(saved, dict) and isinstance(saved.get("sums"), torch.Tensor)
                and saved["sums"].dtype == torch.float32 and saved["sums"].dim() == 1
                and isinstance(saved.get("count"), int) and isinstance(saved.get("seconds"), (int, float))):
            raise BadField(f"means.{part}", "is not a table of running sums, count and seconds")
        check_tensor(f"means.{part}.sums", saved["sums"])
        names = saved.get("names")  # (absent in older checkpoints: the four statistics of those days)
        if names is not None and not (isinstance(names, list) and all(isinstance(name, str) for name in names)
                                      and len(names) == len(saved["sums"])):
            raise BadField(f"means.{part}.names", "is not one name per running sum")


def check_given(given: Any, cfg: TrainConfig) -> None:
    """What the objects a run was given were (absent when it had none): for each part whose setting names a class,
    that class and, for a network, its parameter count."""
    if given is None:
        return
    if not isinstance(given, dict) or not set(given) <= set(PARTS):
        raise BadField("given", "is not a table of the parts given as objects")
    for name, entry in given.items():
        named = cfg.part_names()[name]
        if not (isinstance(entry, dict) and entry.get("class") == named and is_object_name(named)):
            raise BadField(f"given.{name}", f"does not name the class its setting holds ({named!r:.60})")
        count = entry.get("parameters", 0)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT:
            raise BadField(f"given.{name}.parameters", f"is {shown(count)}, not a parameter count")


def check_weights(name: str, weights: Any) -> None:
    """A network's state dict: tensors by name, each float32 (weights, BatchNorm statistics) or int64 (BatchNorm's
    batch count), and finite."""
    if not isinstance(weights, dict) or not all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                                for key, value in weights.items()):
        raise BadField(name, "is not a table of weight tensors")
    for key, value in weights.items():
        check_tensor(f"{name}.{key}", value)


def check_optimizer(name: str, saved: Any) -> None:
    """Adam's state dict: param_groups (tables, each listing its parameters by number) and a state per parameter
    number, whose tensors (step, exp_avg, exp_avg_sq) are float32 and finite; shapes are checked against the
    parameters when the state is loaded."""
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or not isinstance(saved.get("state"), dict):
        raise BadField(name, "is not an optimizer state")
    if not all(isinstance(group, dict) and isinstance(group.get("params"), list)
               and all(isinstance(index, int) for index in group["params"]) for group in groups):
        raise BadField(f"{name}.param_groups", "is not a list of parameter groups")
    for index, values in saved["state"].items():
        if not isinstance(index, int) or not isinstance(values, dict):
            raise BadField(f"{name}.state", "is not a table of states by parameter number")
        for key, value in values.items():
            if not isinstance(value, torch.Tensor) or value.dtype != torch.float32:
                raise BadField(f"{name}.state.{index}.{key}", f"is {shown(value)}, not a float32 tensor")
            check_tensor(f"{name}.state.{index}.{key}", value)


def check_tensor(field: str, value: torch.Tensor) -> None:
    """One of DTYPES, and finite."""
    if value.dtype not in DTYPES:
        raise BadField(field, f"is a {value.dtype} tensor, not one of {', '.join(map(str, DTYPES))}")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise BadField(field, "holds NaN or infinite values")


def shown(value: Any) -> str:
    """A short description of a value of the wrong kind: its type, and the value when it is short."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "a whole number far too large"  # (repr of an int of thousands of digits raises)
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 40 else type(value).__name__
