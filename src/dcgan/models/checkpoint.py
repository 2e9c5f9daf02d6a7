"""Checkpoints: one dict holding both networks, both optimizers, progress, fixed noise, RNG states,
the config and the history (training/state.py writes them). Loaded with weights_only=True so a file cannot run
code, and checked whole (contents.py) before any of it is used."""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import NAMED, TrainConfig, fields_with
from ..errors import UserError, first_line
from .architectures import unused_settings
from .contents import check_contents, checked_config
from .parts import build_generator, build_networks, state_difference

FORMAT_VERSION = 2  # 2: adds epoch_step and the running means of an unfinished epoch (mid-epoch resume)
REQUIRED_KEYS = ("format_version", "config", "generator", "discriminator", "optimizer_g", "optimizer_d",
                 "epoch", "step", "fixed_noise", "rng", "history")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load and check a checkpoint; every failure is a UserError that says what to do."""
    return load_checked(path)[0]


def load_checked(path: Path) -> tuple[dict[str, Any], TrainConfig]:
    """A checkpoint loaded and checked whole, and its config (validated once, without the saving machine's
    folders); every failure is a UserError that says what to do."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found: check the path, or train the run first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" in str(error).lower():  # a class or function to call: could run code
            raise UserError(f"checkpoint {path} holds objects that could run code when loaded; refused: "
                            "use a checkpoint written by dcgan") from None
        raise UserError(f"checkpoint {path} is corrupt: delete it and use an earlier epoch_NNN.pt") from None
    except Exception as error:
        raise UserError(f"checkpoint {path} is corrupt or not a PyTorch file ({first_line(error)}): "
                        "delete it and use an earlier epoch_NNN.pt") from None
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise UserError(f"{path} is not a dcgan checkpoint (keys missing): pass a file written by dcgan train")
    version = payload["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UserError(f"checkpoint {path}: format_version is {version!r}, not a format of dcgan: use a "
                        "checkpoint written by dcgan train")
    if version > FORMAT_VERSION:
        raise UserError(f"checkpoint {path} has format {version}, newer than this dcgan understands "
                        f"({FORMAT_VERSION}): update the package")
    return payload, check_contents(payload, path)


def saved_config(payload: dict[str, Any], path: Path) -> TrainConfig:
    """The config a loaded checkpoint was trained with, checked like the flags, without the saving machine's
    folders."""
    return checked_config(payload, path)


def check_architecture(saved: TrainConfig, wanted: TrainConfig, path: Path) -> None:
    """Refuse to resume when the requested networks differ from the saved ones: a setting with the architecture
    role that the saved G or D reads (ngf is free in an mlp run); 0 in a setting that follows the data is any."""
    unused = unused_settings(saved)
    differ = [name for name in fields_with("architecture") if name not in unused
              and shaping(wanted, name) != shaping(saved, name)
              and not (name in fields_with("follows_data") and getattr(wanted, name) == 0)]
    if differ:
        saved_text = ", ".join(f"{name}={shaping(saved, name)}" for name in differ)
        wanted_text = ", ".join(f"{name}={shaping(wanted, name)}" for name in differ)
        raise UserError(f"checkpoint {path} was trained with {saved_text} but this run asks for {wanted_text}: "
                        "drop those settings to resume it, or start a new --run")


def shaping(cfg: TrainConfig, name: str) -> Any:
    """A setting as it shapes the networks: generator and discriminator as they follow --arch when empty."""
    return dict(zip(NAMED, cfg.architectures())).get(name, getattr(cfg, name))


def restore_networks(payload: dict[str, Any], path: Path, cfg: TrainConfig | None = None
                     ) -> tuple[nn.Module, nn.Module]:
    """G and D built from the checkpoint's own config (`cfg`, when load_checked has given it), with its weights (on
    the CPU)."""
    generator, discriminator = build_networks(cfg or saved_config(payload, path))
    with state_dict_errors(path):
        generator.load_state_dict(payload["generator"])
        discriminator.load_state_dict(payload["discriminator"])
    return generator, discriminator


def restore_generator(payload: dict[str, Any], path: Path, cfg: TrainConfig | None = None, weights: str = "generator",
                      given: nn.Module | None = None) -> nn.Module:
    """G with the checkpoint's weights saved under `weights` ("generator", or "generator_ema": the moving average):
    built from the checkpoint's own config, or `given` (a G passed as an object, whose parameters must fit)."""
    generator = build_generator(cfg or saved_config(payload, path), given)
    if given is not None:
        problem = state_difference(given.state_dict(), payload[weights])
        if problem:
            raise UserError(f"checkpoint {path} does not fit the generator passed: {problem}; pass the G it was "
                            "trained with")
    with state_dict_errors(path):
        generator.load_state_dict(payload[weights])
    return generator


@contextlib.contextmanager
def state_dict_errors(path: Path):
    """Turn a weights file that does not fit its networks into a UserError."""
    try:
        yield
    except (RuntimeError, TypeError, AttributeError) as error:
        raise UserError(f"checkpoint {path} does not match its own config ({first_line(error)}): it was altered or "
                        "written by another program; use another checkpoint") from None
