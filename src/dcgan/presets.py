"""Named recipes: sets of train settings chosen together. `--preset NAME` (or TrainConfig.from_preset) starts
from them; flags given explicitly win. docs/variants.md holds the measurements behind `recommended`."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {  # name -> (what it is, the settings it changes)
    "recommended": ("the best images per CPU minute (docs/variants.md, the study at the set-up command's CPU time): "
                    "a DCGAN of width 32, batch 64, learning rate 3e-4, DiffAugment translation, the moving average",
                    {"ngf": 32, "ndf": 32, "batch_size": 64, "lr": 3e-4, "diffaugment": "translation", "ema": 0.999}),
    "anime96": ("the 96x96 anime recipe: residual G, dropout in D, one-sided label smoothing, flips",
                {"arch": "resnet", "image_size": 96, "real_label": 0.9, "flip": True}),
}
