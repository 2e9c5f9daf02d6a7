"""Named recipes: sets of train settings chosen together. `--preset NAME` (or TrainConfig.from_preset) starts
from them; flags given explicitly win. docs/variants.md holds the measurements behind `recommended`."""

from __future__ import annotations

from typing import Any

from .errors import UserError

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "recommended": ("the best variant of docs/variants.md (lowest FID on both seeds): the residual GAN",
                    {"arch": "resnet"}),
    "anime96": ("the 96x96 anime recipe: residual G, dropout in D, one-sided label smoothing, flips",
                {"arch": "resnet", "image_size": 96, "real_label": 0.9, "flip": True}),
}


def preset_settings(name: str) -> dict[str, Any]:
    """The settings of a preset (a copy); a UserError naming the presets for an unknown name."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name][1])
