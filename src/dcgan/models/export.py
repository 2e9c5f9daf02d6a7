"""An exported generator: a folder anyone can load without this package's checkpoints, and without pickle.

    <folder>/model.safetensors   G's weights and BatchNorm statistics (safetensors: tensors only, no code)
    <folder>/config.json         what rebuilds G (the settings exported in config.py that G's spec reads: arch,
                                 generator, image_size, nz, ngf or hidden, ...), which weights these are (ema or
                                 raw) and where they came from (run, data, epoch)
This is the layout Hugging Face's PyTorchModelHubMixin writes and reads (save_pretrained / from_pretrained) for
`ExportedGenerator`, so a folder is shared with one upload. A folder is untrusted input: `load_export` checks
every value of config.json like the flags and every tensor against the networks it rebuilds.

A G passed to train() as an object (models/parts.py) is exported with its class's import path as `generator`
("module:QualifiedName") and its parameter count. Loading it takes an instance of that class
(`load_export(folder, generator=G)`): nothing is ever imported because a file names it, since a file must not choose
code to run. A class defined in a notebook or a script (`__main__`) cannot be imported again at all: the export says
so in one line and in its model card.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import check_folder
from ..config import TrainConfig, fields_with, role_of
from ..errors import SettingError, UserError, first_line
from ..files import (
    UnreadableFile,
    atomic_write_bytes,
    atomic_write_text,
    read_json,
    read_regular,
    replace_folder,
    staging_folder,
)
from ..paths import entries, is_regular
from ..registry import is_object_name, object_name
from .architectures import chosen, unused_settings
from .contents import MAX_COUNT
from .parts import build_generator

WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"  # PyTorchModelHubMixin's names
EXPORT_VERSION = 2  # 2: records generator (G's spec); a version 1 export has none, its G follows arch
# where the weights came from; parameters: the count of a G passed as an object (0 otherwise)
ABOUT_FIELDS = {"run": str, "data": str, "epoch": int, "step": int, "weights": str, "parameters": int}
PREFIX = "generator."  # the weights' names in model.safetensors: ExportedGenerator's attribute
MAX_CONFIG_BYTES = 1 << 20
MAX_TEXT = 4096  # the longest run or data name an export may give (epoch and step: contents.MAX_COUNT)


class ExportedGenerator(nn.Module):
    """G rebuilt from the settings of config.json; extra keys (the weights' provenance) are accepted and ignored,
    so `class HubGenerator(ExportedGenerator, PyTorchModelHubMixin)` loads an export with from_pretrained."""

    def __init__(self, **settings: Any):
        super().__init__()
        self.settings = exported_config(settings)
        if self.settings.channels not in (1, 3):
            raise SettingError("channels", f"channels = {self.settings.channels!r}: an exported G draws 1 or 3 "
                               "channels")
        self.generator = build_generator(self.settings)
        self.nz, self.classes = self.settings.nz, self.settings.classes if self.settings.conditional else 0

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # z: (B, nz), labels: (B,) for a conditional G -> images (B, channels, S, S) in [-1, 1]
        return self.generator(z) if labels is None else self.generator(z, labels)


def exported_config(settings: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig of the exported settings among `settings` (defaults for the others)."""
    return TrainConfig(**{name: settings[name] for name in fields_with("exported") if name in settings}).validate()


def export_fields(cfg: TrainConfig) -> tuple[str, ...]:
    """The settings an export of cfg's G records: the exported ones, less those G's spec does not read."""
    unused = unused_settings(cfg, chosen(cfg)[:1])
    return tuple(name for name in fields_with("exported") if name not in unused)


def export_settings(cfg: TrainConfig, about: dict[str, Any]) -> dict[str, Any]:
    """config.json of an export: G's settings from the run's config, then `about` (run, data, epoch, ...)."""
    return {**{name: getattr(cfg, name) for name in export_fields(cfg)}, **about,
            "dcgan_export_version": EXPORT_VERSION}


def write_export(folder: Path, generator: nn.Module, settings: dict[str, Any]) -> None:
    """Write G (a network built for `settings`, or an object whose class `settings` names) as model.safetensors and
    config.json, each atomically."""
    from safetensors.torch import save

    if not is_object_name(settings.get("generator", "")):  # the settings must rebuild G: checked by loading it
        ExportedGenerator(**settings).generator.load_state_dict(generator.state_dict())
    tensors = {PREFIX + name: tensor.detach().cpu().contiguous() for name, tensor in generator.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))
    atomic_write_text(folder / CONFIG_FILE, json.dumps(settings, indent=2) + "\n")


def load_export(folder: Path, given: nn.Module | None = None) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """(G in eval mode, a TrainConfig of its settings, config.json) from an export folder: G rebuilt on the CPU, or
    `given` with the exported weights; a UserError naming the file and the problem for anything that is not what
    `write_export` writes."""
    folder = Path(folder)
    settings = read_settings(folder)
    named = settings.get("generator", "")
    if is_object_name(named):
        check_given_class(folder, named, given)
    try:
        cfg = exported_config(settings)
        generator = given if given is not None else ExportedGenerator(**settings).generator
        cfg = dataclasses.replace(cfg, data=settings["data"] or "unknown", run=settings["run"] or "export").validate()
    except UserError as error:
        raise altered(folder / CONFIG_FILE, str(error)) from None
    expected = {PREFIX + name: tensor for name, tensor in generator.state_dict().items()}
    try:
        weights = read_weights(folder / WEIGHTS_FILE, expected)
    except UserError as error:
        if given is None:
            raise
        raise UserError(f"export {folder} does not fit the generator passed ({error}): pass the G it was trained "
                        "with") from None
    generator.load_state_dict({name[len(PREFIX):]: tensor for name, tensor in weights.items()})
    return generator.eval(), cfg, settings


def check_given_class(folder: Path, named: str, given: nn.Module | None) -> None:
    """An export of a G passed as an object loads into an instance of that class, never into one it imports."""
    if given is None:
        raise UserError(f"export {folder} holds a G passed to train() as an object ({named}): pass generator= an "
                        "instance of that class to load it (dcgan never imports a class that a file names)")
    if object_name(given) != named:
        raise UserError(f"export {folder} holds a {named}, not a {object_name(given)}: pass an instance of {named}")


def read_settings(folder: Path) -> dict[str, Any]:
    """config.json, checked for every key G needs (those its export format records) and for the provenance keys'
    types."""
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass a checkpoint file or a folder written by dcgan export")
    for needed in (path, folder / WEIGHTS_FILE):
        if not os.path.lexists(needed):
            raise UserError(f"{folder} is not a dcgan export ({needed.name} is missing): write one with python -m "
                            "dcgan export --run NAME --out DIR, or pass a checkpoint file")
    try:
        settings = read_json(path, MAX_CONFIG_BYTES)
    except UnreadableFile as problem:
        raise altered(path, str(problem)) from None
    if not isinstance(settings, dict):
        raise altered(path, "it holds no settings object")
    version = settings.get("dcgan_export_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise altered(path, f"dcgan_export_version = {version!r:.40} is not a version of the export format")
    try:
        cfg = exported_config(settings)
    except UserError as error:
        raise altered(path, str(error)) from None
    missing = [name for name in export_fields(cfg) if name not in settings and role_of(name, "exported") <= version]
    if missing:
        raise altered(path, f"it lacks {', '.join(missing)}")
    for name, kind in ABOUT_FIELDS.items():
        value = settings.setdefault(name, kind())
        if not isinstance(value, kind) or isinstance(value, bool):
            raise altered(path, f"{name} = {value!r:.60} is not a {kind.__name__}")
        if not (0 <= value <= MAX_COUNT if kind is int else len(value) <= MAX_TEXT):
            raise altered(path, f"{name} = {value!r:.40}... is far too {'large' if kind is int else 'long'}")
    return settings


def read_weights(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """model.safetensors, checked tensor by tensor against the networks config.json describes."""
    from safetensors.torch import load

    most = sum(tensor.numel() * tensor.element_size() for tensor in expected.values()) + MAX_CONFIG_BYTES
    try:
        data = read_regular(path, most)  # whole, not memory-mapped: a file changed meanwhile cannot crash
    except UnreadableFile as problem:
        raise altered(path, str(problem)) from None
    try:
        tensors = load(data)
    except Exception as error:  # the library's own error type differs between versions
        raise altered(path, f"it is not a safetensors file ({first_line(error)[:120]})") from None
    unexpected, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
    if unexpected or missing:
        which = f"unexpected tensor {unexpected[0]!r}" if unexpected else f"tensor {missing[0]!r} is missing"
        raise altered(path, f"{which} for the G that config.json describes")
    for name, tensor in tensors.items():
        wanted = expected[name]
        if tensor.shape != wanted.shape:
            raise altered(path, f"tensor {name!r} has shape {tuple(tensor.shape)}, G needs {tuple(wanted.shape)}")
        if tensor.dtype != wanted.dtype:  # only what G is built with: no cast can overflow or lose anything
            raise altered(path, f"tensor {name!r} is {tensor.dtype}, G needs {wanted.dtype}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise altered(path, f"tensor {name!r} holds NaN or infinite values")
    return tensors


def altered(path: Path, problem: str) -> UserError:
    return UserError(f"export file {path}: {problem}; it was altered or written by another program: export the "
                     "run again (python -m dcgan export)")


def check_out(out: Path, names: tuple[str, ...]) -> None:
    """--out may be new, an empty folder, or a folder holding an earlier export (files of `names`) and nothing else
    (its config.json says so); anything else is refused, so no file of the user's is replaced."""
    check_folder("--out", str(out))
    if out.is_symlink():
        raise UserError(f"--out {out} is a link: name the folder itself")
    held = entries(out)
    if not held:
        return
    foreign = [path.name for path in held if path.name not in names or not is_regular(path)]
    if foreign:
        raise UserError(f"--out {out} holds {foreign[0]!r}, which is not a file of a dcgan export: export into a new "
                        "or empty folder, or one holding an earlier export")
    try:
        marked = "dcgan_export_version" in read_json(out / CONFIG_FILE, MAX_CONFIG_BYTES)
    except (UnreadableFile, TypeError):
        marked = False
    if not marked:
        raise UserError(f"--out {out} holds files named like an export's but no dcgan {CONFIG_FILE}: export into a "
                        "new or empty folder")


def write_export_folder(out: Path, generator: nn.Module, settings: dict[str, Any],
                        files: Mapping[str, Callable[[Path], None]]) -> None:
    """Write the export folder `out` (checked beforehand with check_out): G and config.json, then each of `files`
    (name -> what writes it to the path given). All is written into a new folder beside `out`, then put in its
    place whole: an earlier export there is replaced in one step, and a failure on the way leaves it as it was."""
    with staging_folder(out) as staging:
        write_export(staging, generator, settings)
        for name, write in files.items():
            write(staging / name)
        replace_folder(staging, out, (WEIGHTS_FILE, CONFIG_FILE, *files))
