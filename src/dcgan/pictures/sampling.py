"""Drawing images from a generator: the per-epoch fixed-noise grids and `dcgan sample`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import TrainConfig
from ..models.checkpoint import load_checkpoint, restore_sampler, saved_config
from ..models.conditional import cycling_labels
from ..models.export import load_export


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor, batch_size: int = 256,
             labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] on the CPU for `noise` (N, nz), with G in eval mode (BatchNorm running stats).

    A conditional G draws image i of class labels[i]; without labels it cycles through the classes."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    classes = getattr(generator, "classes", 0)
    if classes and labels is None:
        labels = cycling_labels(len(noise), classes)
    parts = [(part,) for part in noise.split(batch_size)] if not classes else \
        zip(noise.split(batch_size), labels.split(batch_size))
    try:
        chunks = [generator(*(t.to(device) for t in part)).float().cpu() for part in parts]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


def noise_for(count: int, nz: int, seed: int) -> torch.Tensor:
    """The same (count, nz) standard-normal noise for the same seed on every device."""
    return torch.randn(count, nz, generator=torch.Generator().manual_seed(seed))


def load_generator(path: Path | str, device: torch.device | str) -> tuple[nn.Module, TrainConfig, dict]:
    """G from a checkpoint (its moving average when it has one; eval mode, on `device`), its config and the
    whole checkpoint; or from a folder written by `dcgan export`, with its settings and config.json."""
    path = Path(path)
    if path.is_dir():
        generator, cfg, about = load_export(path)
        return generator.to(device).eval(), cfg, about
    payload = load_checkpoint(path)
    generator = restore_sampler(payload, path)
    return generator.to(device).eval(), saved_config(payload, path), payload


def load_run(run: str = "", checkpoints_dir: str = "", checkpoint: str = "",
             device: str = "auto") -> tuple[nn.Module, TrainConfig, dict]:
    """G of a run's last checkpoint (or of `checkpoint`: a checkpoint file or an export folder), with its config and
    the whole checkpoint (an export: its config.json)."""
    from ..device import pick_device
    from ..errors import UserError
    from ..paths import run_paths

    if not run and not checkpoint:
        raise UserError("name a run, a checkpoint file or an exported folder to load")
    if checkpoint and Path(checkpoint).is_dir():
        return load_generator(checkpoint, pick_device(device))
    return load_generator(run_paths(run, "", checkpoints_dir).checkpoint_file(checkpoint), pick_device(device))


def real_images_for(cfg: TrainConfig, count: int, seed: int = 0, data_dir: str = "") -> torch.Tensor:
    """`count` random real images of the dataset a run trained on, prepared as it was: floats in [-1, 1]."""
    from ..data.cache import load_image_data
    from ..paths import root_or_default

    data = load_image_data(cfg.data, cfg.image_size, cfg.channels, root_or_default(data_dir or cfg.data_dir, "data"),
                           cfg.download, progress=False)
    return data.sample(min(count, len(data)), seed)
