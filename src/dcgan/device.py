"""Choosing the device: CUDA when present (auto), else the CPU."""

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
