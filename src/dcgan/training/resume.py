"""Continuing a run from its checkpoint (--resume): the request checked against what the checkpoint holds, before
anything is read or written; then its weights, optimizer states, progress and random streams put into the run
being started (start.py builds the networks first, from the same architecture settings and parts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

import torch

from ..config import TrainConfig
from ..errors import UserError
from ..models.checkpoint import check_architecture, load_checked, state_dict_errors
from ..models.parts import Parts
from ..paths import RunPaths
from .state import Networks, Progress, World, noise_seed, put_streams


def resume_request(cfg: TrainConfig, paths: RunPaths, parts: Parts, world: World,
                   flags: Collection[str] | None) -> tuple[TrainConfig, dict, Path]:
    """(the run's settings, its checkpoint, the checkpoint's path): the request over the saved settings (`flags`:
    see TrainConfig.over_saved), checked against the checkpoint's networks and parts."""
    payload, saved, path = checkpoint_to_resume(paths, cfg.checkpoint)
    parts.check_resumable(saved, payload, path)
    cfg = parts.named(cfg.over_saved(saved, flags)).validate()
    check_architecture(saved, cfg, path)
    cfg.check_parts()
    cfg = dataclasses.replace(cfg.resolved(parts.loss_of(cfg)), run=paths.name, channels=saved.channels)
    world.local_batch(cfg.batch_size)
    if int(payload["epoch"]) >= cfg.epochs:
        raise UserError(f"{path} already holds {payload['epoch']} epochs: pass --epochs above "
                        f"{payload['epoch']} to train further")
    return cfg, payload, path


def checkpoint_to_resume(paths: RunPaths, explicit: str) -> tuple[dict, TrainConfig, Path]:
    """(payload, its config, its path): the checkpoint named, else last.pt, else (last.pt lost, say by a kill
    between the two files of one save) the newest epoch checkpoint that loads whole; the path says which."""
    epochs = [] if explicit or paths.last_checkpoint.exists() else paths.epoch_checkpoints()
    if not epochs:
        path = paths.checkpoint_file(explicit)
        return (*load_checked(path), path)  # (its config validated there, once)
    for path in reversed(epochs):
        try:
            return (*load_checked(path), path)
        except UserError:  # not whole: the one before
            continue
    raise UserError(f"no checkpoint of run '{paths.name}' in {paths.checkpoints} loads (last.pt is missing and "
                    "every epoch_NNN.pt is damaged): start the run again with --overwrite")


def load_weights_and_optimizers(nets: Networks, payload: dict, path: Path, cfg: TrainConfig) -> None:
    """The checkpoint's weights and optimizer states, loaded into the run's networks and optimizers (built from
    the same architecture settings and parts: resume_request checked them)."""
    with state_dict_errors(path):
        nets.generator.load_state_dict(payload["generator"])
        nets.discriminator.load_state_dict(payload["discriminator"])
        if nets.ema_generator is not None:  # a run that had no average yet starts it from G
            nets.ema_generator.load_state_dict(payload.get("generator_ema") or payload["generator"])
    try:
        load_optimizer(nets.opt_g, payload["optimizer_g"], cfg.lr_g, cfg)
        load_optimizer(nets.opt_d, payload["optimizer_d"], cfg.lr_d, cfg)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def load_progress(progress: Progress, payload: dict, path: Path, world: World, device: torch.device,
                  seed: int) -> None:
    """Epochs and steps done, the history, the running means and every random stream, from a checkpoint."""
    try:
        progress.epoch, progress.step = int(payload["epoch"]), int(payload["step"])
        progress.epoch_step = int(payload.get("epoch_step", 0))
        progress.history = list(payload["history"])
        progress.epoch_rng = payload["rng"]["data"]
        progress.data_rng.set_state(progress.epoch_rng)
        restore_rank_streams(progress, payload["rng"], world, device, seed)
        if "means" in payload:
            progress.epoch_means.restore(payload["means"]["epoch"])
            progress.window_means.restore(payload["means"]["window"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, lr: float, cfg: TrainConfig) -> None:
    """Adam's moments from the checkpoint, with this run's learning rate and betas (which --resume may change),
    implementation and memory layout: a checkpoint written on the CPU resumes on a GPU with graphs, one from a
    channels-last run resumes with --compile or --channels-last off, and the other way round."""
    implementation = {key: optimizer.defaults[key] for key in ("fused", "capturable", "foreach")
                      if key in optimizer.defaults}
    # load_state_dict places each `step` by the saved groups' fused / capturable flags (on the parameter's device
    # for fused or capturable Adam, else where it was saved): they must be this run's before loading
    groups = [{**group, **implementation, "lr": lr, "betas": (cfg.beta1, cfg.beta2)}
              for group in saved["param_groups"]]
    optimizer.load_state_dict({**saved, "param_groups": groups})
    lay_out_like_parameters(optimizer)


def lay_out_like_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Give every moment its parameter's strides: a loaded moment keeps the layout it was saved in, and fused Adam
    needs moments shaped and strided like their parameter. A moment of another shape is a ValueError."""
    for parameter, values in optimizer.state.items():
        for key, value in values.items():
            if key == "step" or not isinstance(value, torch.Tensor):
                continue
            if value.shape != parameter.shape:
                raise ValueError(f"Adam's {key} has shape {tuple(value.shape)}, its parameter {tuple(parameter.shape)}")
            if value.stride() != parameter.stride():
                values[key] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)


def restore_rank_streams(progress: Progress, rng: dict, world: World, device: torch.device, seed: int) -> None:
    """This rank's noise and global generators, when the checkpoint has them for this device and world size;
    else (another device or process count) a new stream that is still the same for the same checkpoint."""
    ranks = rng.get("ranks") or [rng]
    if rng.get("noise_device") == device.type and len(ranks) == world.size:
        put_streams(progress, device, ranks[world.rank])
    else:
        progress.noise_rng.manual_seed(noise_seed(seed, world.rank) + progress.step)
