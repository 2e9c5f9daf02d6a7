"""What a checkpoint holds of a run in progress, and putting it back.

Besides weights and optimizers: the step reached (also in the middle of an epoch), the running means of the
unfinished epoch, and every random stream (data order and flips, each rank's noise, torch's global generators),
so that a run resumed on the CPU ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import TrainConfig
from ..errors import UserError
from ..models.checkpoint import FORMAT_VERSION, check_architecture, load_checkpoint, restore_networks, saved_config
from ..paths import RunPaths

if TYPE_CHECKING:
    from .loop import TrainState

NOISE_SEED_STRIDE = 100_003  # rank r draws its noise from seed + 2 + r * this: streams that never meet


def noise_seed(seed: int, rank: int) -> int:
    return seed + 2 + NOISE_SEED_STRIDE * rank


def open_resume(cfg: TrainConfig, paths: RunPaths) -> tuple[TrainConfig, dict, Path]:
    """The checkpoint to continue from, checked against the requested run before any data is loaded."""
    path = paths.checkpoint_file(cfg.checkpoint)
    payload = load_checkpoint(path)
    saved = saved_config(payload, path)
    check_architecture(saved, cfg, path)
    if int(payload["epoch"]) >= cfg.epochs:
        raise UserError(f"{path} already holds {payload['epoch']} epochs: pass --epochs above "
                        f"{payload['epoch']} to train further")
    return dataclasses.replace(cfg, channels=saved.channels), payload, path


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    """The checkpoint of the run as it stands. Every rank must call it (it gathers their random streams)."""
    world = state.world
    streams = world.gather(rank_streams(state))
    mean_over_ranks = world.mean if world.distributed else None
    return {
        "format_version": FORMAT_VERSION,
        "config": state.cfg.to_dict(),
        "generator": state.generator.state_dict(),
        "discriminator": state.discriminator.state_dict(),
        **({"generator_ema": state.ema_generator.state_dict()} if state.ema_generator is not None else {}),
        "optimizer_g": state.opt_g.state_dict(),
        "optimizer_d": state.opt_d.state_dict(),
        "epoch": state.epoch,  # epochs completed
        "step": state.step,  # steps completed
        "epoch_step": state.epoch_step,  # steps completed of the next epoch (a mid-epoch checkpoint)
        "fixed_noise": state.fixed_noise.cpu(),
        "rng": {"data": state.epoch_rng, "noise_device": state.device.type, **streams[0],
                **({"ranks": streams} if world.size > 1 else {})},
        "means": {"epoch": state.epoch_means.saved(mean_over_ranks),
                  "window": state.window_means.saved(mean_over_ranks)},
        "history": state.history,
    }


def rank_streams(state: TrainState) -> dict[str, torch.Tensor]:
    """This process's random streams: its noise generator, and torch's global ones (which dropout uses)."""
    streams = {"noise": state.noise_rng.get_state(), "torch_cpu": torch.get_rng_state()}
    if state.device.type == "cuda":
        streams["torch_cuda"] = torch.cuda.get_rng_state(state.device)
    return streams


def restore_state(state: TrainState, payload: dict, path: Path) -> None:
    """Load weights, optimizers, progress, fixed noise, running means and random streams from a checkpoint."""
    generator, discriminator = restore_networks(payload, path)
    state.generator.load_state_dict(generator.state_dict())
    state.discriminator.load_state_dict(discriminator.state_dict())
    try:
        if state.ema_generator is not None:  # a run that had no average yet starts it from G
            state.ema_generator.load_state_dict(payload.get("generator_ema") or generator.state_dict())
        load_optimizer(state.opt_g, payload["optimizer_g"], state.cfg.lr_g, state.cfg)
        load_optimizer(state.opt_d, payload["optimizer_d"], state.cfg.lr_d, state.cfg)
        state.fixed_noise = payload["fixed_noise"].float()
        state.epoch, state.step = int(payload["epoch"]), int(payload["step"])
        state.epoch_step = int(payload.get("epoch_step", 0))
        state.history = list(payload["history"])
        state.epoch_rng = payload["rng"]["data"]
        state.data_rng.set_state(state.epoch_rng)
        restore_rank_streams(state, payload["rng"])
        if "means" in payload:
            state.epoch_means.restore(payload["means"]["epoch"])
            state.window_means.restore(payload["means"]["window"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"checkpoint {path} is incomplete ({error}): use another checkpoint") from None


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, lr: float, cfg: TrainConfig) -> None:
    """Adam's moments from the checkpoint, with this run's learning rate and betas (which --resume may change)."""
    optimizer.load_state_dict(saved)
    for group in optimizer.param_groups:
        group["lr"], group["betas"] = lr, (cfg.beta1, cfg.beta2)


def restore_rank_streams(state: TrainState, rng: dict) -> None:
    """This rank's noise and global generators, when the checkpoint has them for this device and world size;
    else (another device or process count) a new stream that is still the same for the same checkpoint."""
    ranks = rng.get("ranks") or [rng]
    if rng.get("noise_device") == state.device.type and len(ranks) == state.world.size:
        mine = ranks[state.world.rank]
        state.noise_rng.set_state(mine["noise"])
        if "torch_cpu" in mine:
            torch.set_rng_state(mine["torch_cpu"])
        if state.device.type == "cuda" and "torch_cuda" in mine:
            torch.cuda.set_rng_state(mine["torch_cuda"], state.device)
    else:
        state.noise_rng.manual_seed(noise_seed(state.cfg.seed, state.world.rank) + state.step)
