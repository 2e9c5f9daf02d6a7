"""What `dcgan export` (pictures/commands.py) puts beside a run's generator in its folder (models/export.py): a
sample grid and a model card.

    <out>/model.safetensors, config.json   G only (weights-only, no pickle), and what rebuilds it
    <out>/samples.png                      64 images from seed 0 (conditional: one row of 8 per class)
    <out>/README.md                        the model card: data, epochs, FID with its feature space, the grid, use
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..files import atomic_write_text
from ..models.conditional import class_rows
from ..models.export import CONFIG_FILE, WEIGHTS_FILE
from ..models.parts import importable
from ..models.runs import LoadedRun
from ..registry import is_object_name
from .grids import save_grid
from .sampling import generate, noise_for

SAMPLES_FILE, CARD_FILE = "samples.png", "README.md"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, SAMPLES_FILE, CARD_FILE)  # everything an export folder holds
GRID_SIDE = 8  # samples.png: 8 x 8 images


def card_files(run: LoadedRun, about: dict[str, Any]) -> dict[str, Callable[[Path], None]]:
    """What writes samples.png and README.md into the export folder of `run` (about: where its weights came from,
    as config.json says)."""
    fid = run.measured_fid()
    return {SAMPLES_FILE: lambda path: save_grid(sample_images(run.generator, run.cfg), path, nrow=GRID_SIDE),
            CARD_FILE: lambda path: atomic_write_text(path, model_card(run.cfg, about, fid))}


def sample_images(generator: torch.nn.Module, cfg: TrainConfig) -> torch.Tensor:
    """The card's images: 64 from seed 0, or for a conditional G a row of 8 per class."""
    if cfg.conditional:
        labels = class_rows(cfg.classes, GRID_SIDE)
        return generate(generator, noise_for(len(labels), cfg.nz, 0), labels=labels)
    return generate(generator, noise_for(GRID_SIDE * GRID_SIDE, cfg.nz, 0))


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
{object_use(cfg, about) if is_object_name(cfg.generator) else named_use(cfg, size)}
Files: `{WEIGHTS_FILE}` (safetensors, no pickle), `{CONFIG_FILE}` (the settings that rebuild G, and where its
weights came from), `{SAMPLES_FILE}`. Licence: MIT, like the code that trained it.
"""


def named_use(cfg: TrainConfig, size: str) -> str:
    """How to load a G that dcgan builds from its settings: the command line, Python, the Hugging Face Hub."""
    return f"""
With dcgan installed (`pip install -e .` in its checkout):

```bash
python -m dcgan sample --checkpoint path/to/this/folder --n 64 --out samples.png
```

```python
from dcgan.models.runs import load_generator
from dcgan.pictures.sampling import generate, noise_for
G = load_generator("path/to/this/folder", "cpu").generator  # also .cfg, and .saved: config.json
images = generate(G, noise_for(16, {cfg.nz}, seed=0))  # (16, {cfg.channels}, {size.replace("x", ", ")}), in [-1, 1]
```

With Hugging Face's hub library, the folder is what `PyTorchModelHubMixin` saves and loads:

```python
from huggingface_hub import PyTorchModelHubMixin
from dcgan.models.export import ExportedGenerator

class HubGenerator(ExportedGenerator, PyTorchModelHubMixin):
    pass

G = HubGenerator.from_pretrained("path/to/this/folder")  # or "user/repo" once uploaded
```

"""


def object_use(cfg: TrainConfig, about: dict[str, Any]) -> str:
    """How to load a G that was passed to train() as an object: into an instance of its class."""
    module, _, name = cfg.generator.partition(":")
    where = (f"Its class was defined in a notebook or a script (`{module}`) and cannot be imported again: keep its "
             "code beside this folder." if not importable(cfg.generator) else
             f"Its class is `{name}` of the module `{module}`.")
    return f"""
G is `{cfg.generator}` ({about.get('parameters', 0):,} parameters), a network passed to dcgan's `train()` as an
object. {where} Load the weights into an instance of it (dcgan never imports a class that a file names):

```python
from dcgan.models.runs import load_generator
from dcgan.pictures.sampling import generate, noise_for
G = load_generator("path/to/this/folder", "cpu", generator={name}(...)).generator
images = generate(G, noise_for(16, {cfg.nz}, seed=0))  # in [-1, 1]
```

"""
