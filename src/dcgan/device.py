"""Choosing the device: CUDA when present (auto), else the CPU; and the run size that suits it."""

from __future__ import annotations

import torch

from .errors import UserError


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available: use --device cpu or auto")
    if requested not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{requested}': use auto, cpu or cuda")
    return torch.device(requested)


# What a notebook trains when its parameters leave the size or the epochs at 0: on a GPU the CLI's defaults
# (64x64, 25 epochs); on a CPU 32x32 and 5 epochs, which take minutes rather than hours.
SIZED_FOR = {"cuda": {"image_size": 64, "epochs": 25}, "cpu": {"image_size": 32, "epochs": 5}}


def sized_for_device(image_size: int, epochs: int, device: str = "auto") -> tuple[dict, str]:
    """The image size and epochs to train with on `device` (auto, cpu or cuda): each 0 becomes what suits the
    device (SIZED_FOR), other values are kept. Returns the settings and a line saying what was chosen."""
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    suited, where = SIZED_FOR.get(kind, SIZED_FOR["cpu"]), "a GPU" if kind == "cuda" else "a CPU"
    settings = {"image_size": image_size or suited["image_size"], "epochs": epochs or suited["epochs"]}
    chosen = [f"{name.replace('_', ' ')} {settings[name]}" + ("" if given else f" (0: what suits {where})")
              for name, given in (("image_size", image_size), ("epochs", epochs))]
    return settings, f"training on {kind}: {', '.join(chosen)}"
