"""`dcgan export`: a run's generator as a folder to hand to someone (see models/export.py), with a sample grid
and a model card.

    <out>/model.safetensors, config.json   G only (weights-only, no pickle), and what rebuilds it
    <out>/samples.png                      64 images from seed 0 (conditional: one row of 8 per class)
    <out>/README.md                        the model card: data, epochs, FID with its feature space, the grid, use
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..checks import check_folder
from ..config import TrainConfig
from ..errors import UserError
from ..files import UnreadableFile, atomic_write_text, read_json, replace_folder, staging_folder
from ..models.checkpoint import load_checkpoint, restore_networks, restore_sampler, saved_config
from ..models.conditional import class_rows
from ..models.export import CONFIG_FILE, MAX_CONFIG_BYTES, WEIGHTS_FILE, export_settings, write_export
from ..paths import entries, eval_result_path, is_regular
from .grids import save_grid
from .sampling import generate, noise_for

SAMPLES_FILE, CARD_FILE = "samples.png", "README.md"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, SAMPLES_FILE, CARD_FILE)  # everything an export folder holds
GRID_SIDE = 8  # samples.png: 8 x 8 images
WEIGHTS = ("auto", "ema", "raw")  # auto: the moving average when the run kept one, else G's own weights


def export_run(checkpoint: Path, out: Path, weights: str = "auto", say: Callable[[str], None] = print) -> Path:
    """Write the export folder `out` from a checkpoint file; returns `out`. The export is written into a new
    folder beside `out`, then put in its place whole: an earlier export there is replaced in one step, and a
    failure on the way leaves it as it was."""
    check_out(out)
    payload = load_checkpoint(checkpoint)
    cfg = saved_config(payload, checkpoint)
    generator, chosen = chosen_weights(payload, checkpoint, weights)
    about = {"run": cfg.run, "data": cfg.data, "epoch": int(payload["epoch"]), "step": int(payload["step"]),
             "weights": chosen}
    fid = measured_fid(checkpoint.parent, about["epoch"])
    with staging_folder(out) as staging:
        write_export(staging, generator, export_settings(cfg, about))
        save_grid(sample_images(generator, cfg), staging / SAMPLES_FILE, nrow=GRID_SIDE)
        atomic_write_text(staging / CARD_FILE, model_card(cfg, about, fid))
        replace_folder(staging, out, EXPORT_FILES)
    say(f"exported {chosen} G of run '{cfg.run}' (epoch {about['epoch']}) to {out}: {', '.join(EXPORT_FILES)}")
    return out


def check_out(out: Path) -> None:
    """--out may be new, an empty folder, or a folder holding an earlier export and nothing else (its config.json
    says so); anything else is refused, so no file of the user's is replaced."""
    check_folder("--out", str(out))
    if out.is_symlink():
        raise UserError(f"--out {out} is a link: name the folder itself")
    held = entries(out)
    if not held:
        return
    foreign = [path.name for path in held if path.name not in EXPORT_FILES or not is_regular(path)]
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


def chosen_weights(payload: dict, path: Path, weights: str) -> tuple[torch.nn.Module, str]:
    """(G with the asked-for weights, "ema" or "raw")."""
    if weights not in WEIGHTS:
        raise UserError(f"unknown --weights '{weights}': use {', '.join(WEIGHTS)}")
    has_ema = payload.get("generator_ema") is not None
    if weights == "ema" and not has_ema:
        raise UserError(f"checkpoint {path} has no moving average of G (the run had no --ema): use --weights raw")
    if weights == "raw" or not has_ema:
        return restore_networks(payload, path)[0].eval(), "raw"
    return restore_sampler(payload, path).eval(), "ema"


def sample_images(generator: torch.nn.Module, cfg: TrainConfig) -> torch.Tensor:
    """The card's images: 64 from seed 0, or for a conditional G a row of 8 per class."""
    if cfg.conditional:
        labels = class_rows(cfg.classes, GRID_SIDE)
        return generate(generator, noise_for(len(labels), cfg.nz, 0), labels=labels)
    return generate(generator, noise_for(GRID_SIDE * GRID_SIDE, cfg.nz, 0))


def measured_fid(folder: Path, epoch: int) -> dict[str, Any] | None:
    """The epoch's FID measurement (evaluate, --eval-every) when one was written beside the checkpoint."""
    try:
        result = read_json(eval_result_path(folder, epoch), MAX_CONFIG_BYTES)
        return {"fid": float(result["fid"]), "features": str(result["features"]),
                "n": int(result.get("n_fake", 0))}
    except (UnreadableFile, ValueError, KeyError, TypeError, OverflowError):
        return None


def model_card(cfg: TrainConfig, about: dict[str, Any], fid: dict[str, Any] | None) -> str:
    """README.md of the export, with the front matter the Hugging Face Hub reads."""
    size = f"{cfg.image_size}x{cfg.image_size}"
    kind = f"class-conditional ({cfg.classes} classes) " if cfg.conditional else ""
    if fid:
        quality = (f"FID {fid['fid']:.2f} against the training data, in the {fid['features']} feature space, "
                   f"{fid['n']:,} generated images (lower is better; FIDs in different feature spaces do not compare)")
    else:
        quality = (f"FID not measured for epoch {about['epoch']}: run `python -m dcgan evaluate --run {about['run']}` "
                   "before exporting to include it")
    weights = "the moving average of G's weights (EMA)" if about["weights"] == "ema" else "G's weights"
    return f"""---
license: mit
library_name: pytorch
tags:
- dcgan
- gan
- unconditional-image-generation
---

# {about['run']}: a {kind}{cfg.architectures()[0]} generator of {size} images

Trained with dcgan on **{cfg.data}** for **{about['epoch']} epochs**
({about['step']:,} steps of {cfg.batch_size} images, loss `{cfg.loss}`); these are {weights}.

- Quality: {quality}.
- Input: noise z of length {cfg.nz} from N(0, 1){", and a class label" if cfg.conditional else ""}.
  Output: {cfg.channels}-channel images in [-1, 1] (`(x + 1) / 2` maps them to [0, 1]).

![64 images from seed 0]({SAMPLES_FILE})

## Use

With dcgan installed (`pip install -e .` in its checkout):

```bash
python -m dcgan sample --checkpoint path/to/this/folder --n 64 --out samples.png
```

```python
from dcgan.pictures.sampling import load_generator, generate, noise_for
G, cfg, about = load_generator("path/to/this/folder", "cpu")
images = generate(G, noise_for(16, cfg.nz, seed=0))  # (16, {cfg.channels}, {size.replace("x", ", ")}), in [-1, 1]
```

With Hugging Face's hub library, the folder is what `PyTorchModelHubMixin` saves and loads:

```python
from huggingface_hub import PyTorchModelHubMixin
from dcgan.models.export import ExportedGenerator

class HubGenerator(ExportedGenerator, PyTorchModelHubMixin):
    pass

G = HubGenerator.from_pretrained("path/to/this/folder")  # or "user/repo" once uploaded
```

Files: `{WEIGHTS_FILE}` (safetensors, no pickle), `{CONFIG_FILE}` (the settings that rebuild G, and where its
weights came from), `{SAMPLES_FILE}`. Licence: MIT, like the code that trained it.
"""
