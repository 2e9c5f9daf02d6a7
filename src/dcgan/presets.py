"""Named recipes: sets of train settings chosen together. `--preset NAME` (or TrainConfig.from_preset) starts
from them; flags given explicitly win. docs/variants.md holds the measurements behind `recommended`."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {  # name -> (what it is, the settings it changes)
    "recommended": ("the best variant of docs/variants.md (lowest FID on both seeds): the residual GAN",
                    {"arch": "resnet"}),
    "anime96": ("the 96x96 anime recipe: residual G, dropout in D, one-sided label smoothing, flips",
                {"arch": "resnet", "image_size": 96, "real_label": 0.9, "flip": True}),
}
