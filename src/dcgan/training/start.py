"""Starting a run, top to bottom: the request checked (its parts, its folders, with --resume the checkpoint: see
resume.py), the data loaded and the networks given as objects tried on it, the networks and optimizers built,
then the checkpoint restored (--resume) or the first grids written.

Under torchrun, the work that touches the run's files is done by rank 0 in two blocks: before the networks are
built (decode the data into the cache, build the evaluator, clear the run's folders) and after (real.png,
epoch_000.png, config.json). The other ranks wait for each block and stop with it when it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import torch

from ..checks import check_folder, check_run_folders
from ..config import TrainConfig
from ..data.batches import DeviceBatches, batch_source
from ..data.cache import CACHE_FOLDER, ImageData, load_image_data
from ..data.datasets import labelled_names
from ..data.sources import data_folder
from ..data.transforms import to_signed
from ..device import pick_device
from ..errors import UserError
from ..files import atomic_write_text
from ..lock import RunLock
from ..metrics.features import Evaluator
from ..models.conditional import class_rows
from ..models.losses import Loss
from ..models.parts import NO_PARTS, Parts, build_networks, described
from ..paths import (
    TEMPORARY_FILE,
    TENSORBOARD_FOLDER,
    RunPaths,
    default_run_name,
    root_or_default,
    run_paths,
    source_folders,
)
from ..pictures.grids import save_grid
from ..pictures.sampling import noise_for
from .distributed import with_sync_batchnorm
from .ema import ema_copy
from .execution import step_runner
from .history import NonFiniteWatch, RunningMeans
from .resume import load_progress, load_weights_and_optimizers, resume_request
from .speed import SpeedPlan, adam, prepare_networks, speed_plan
from .state import SAMPLE_COUNT, Networks, Progress, RunSetup, TrainState, World, noise_seed

REAL_COUNT = 64  # real.png: the first 64 training images, 8 x 8
Log = Callable[[str], None]


@contextlib.contextmanager
def owning_run(cfg: TrainConfig, world: World, device: torch.device, log: Log) -> Iterator[None]:
    """Hold the run's locks for the block, one in each folder it writes (checkpoints, then samples): rank 0 takes
    them for every rank, and when another process owns either folder, every rank stops."""
    paths = paths_of(cfg)
    locks = [RunLock(paths.checkpoints, paths.name), RunLock(paths.samples, paths.name)]

    def acquire_all() -> str:
        notes = []
        try:
            for lock in locks:
                notes.append(lock.acquire())
        except BaseException:
            release_all(locks)
            raise
        return "\n".join(note for note in notes if note)

    note = world.on_main(acquire_all, device)
    if note:
        log(note)
    try:
        yield
    finally:
        release_all(locks)


def release_all(locks: list[RunLock]) -> None:
    """Release the locks taken, last first."""
    for lock in reversed(locks):
        lock.release()


def check_run_places(cfg: TrainConfig) -> None:
    """Before anything is written: the folders the run writes into can be written, and the run's two folders are
    not each other, the data's folder, the image cache or the checkout's source folders."""
    for flag, root in (("--samples-dir", root_or_default(cfg.samples_dir, "samples")),
                       ("--checkpoints-dir", root_or_default(cfg.checkpoints_dir, "checkpoints")),
                       ("--logdir", cfg.logdir)):
        check_folder(flag, str(root), writes=True)
    paths, data_root = paths_of(cfg), root_or_default(cfg.data_dir, "data")
    for flag, folder in (("--samples-dir", paths.samples), ("--checkpoints-dir", paths.checkpoints)):
        if folder.is_symlink():
            raise UserError(f"the run folder {folder} is a link: a run writes into a folder of its own, never "
                            f"through a link; remove the link or choose another {flag} or --run name")
    protected = {"the data folder": data_folder(cfg.data, data_root), "the image cache": data_root / CACHE_FOLDER,
                 **{f"the checkout's {folder.name} folder": folder for folder in source_folders()}}
    check_run_folders({"--samples-dir": paths.samples, "--checkpoints-dir": paths.checkpoints},
                      {words: folder for words, folder in protected.items() if folder is not None})


def paths_of(cfg: TrainConfig) -> RunPaths:
    """The run's folders; the run's name derived from data and size when none is given."""
    return run_paths(cfg.run or default_run_name(cfg.data, cfg.image_size), cfg.samples_dir, cfg.checkpoints_dir)


def start_run(cfg: TrainConfig, log: Log, world: World | None = None, device: torch.device | None = None,
              flags: Collection[str] | None = None, parts: Parts = NO_PARTS) -> TrainState:
    """Set up a fresh run (writing real.png and epoch_000.png) or restore one from its checkpoint; `world` and
    `device` come from distributed.joined_world (default: one process, cfg.device); `flags`: see
    TrainConfig.over_saved; `parts`: the G, D and loss given as objects."""
    world, device = world or World(), device or pick_device(cfg.device)
    # 1. the request checked: config, parts, folders, with --resume the checkpoint; no data read, nothing written
    cfg, paths, resume_from = checked_request(cfg, parts, world, flags)
    # 2. the data: rank 0 decodes it into the cache, tries the given networks on it (then clears the run's
    # folders), then the other ranks read it
    prepared = world.on_main(lambda: prepare_on_main(cfg, parts, paths, device, log), device)
    data, evaluator = prepared if world.main else (load_data(cfg, log, progress=False), None)
    cfg = fitted_to_data(cfg, data)
    # 3. networks, optimizers and random streams, with --resume holding the checkpoint's values; the batch source
    torch.manual_seed(cfg.seed)
    plan, loss = speed_plan(cfg, device, world.distributed), parts.loss_of(cfg)
    nets, progress = new_networks(cfg, parts, loss, plan, world, device), new_progress(cfg, world, device)
    fixed_noise = noise_for(SAMPLE_COUNT, cfg.nz, cfg.seed)
    if resume_from is not None:
        payload, path = resume_from
        load_weights_and_optimizers(nets, payload, path, cfg)
        load_progress(progress, payload, path, world, device, cfg.seed)
        fixed_noise = payload["fixed_noise"].float()
    setup = RunSetup(cfg, loss, paths, device, world, plan, data,
                     batch_source(data, device, cfg.data_on_device, plan.channels_last),
                     fixed_noise=fixed_noise.repeat(cfg.classes, 1) if cfg.conditional and resume_from is None
                     else fixed_noise,
                     steps_per_epoch=len(data) // cfg.batch_size, policies=tuple(cfg.augmentations()),
                     labels=torch.from_numpy(data.labels).to(device) if cfg.conditional else None,
                     fixed_labels=class_rows(cfg.classes, SAMPLE_COUNT) if cfg.conditional else None,
                     evaluator=evaluator, given=described(parts.named_objects()))
    state = TrainState(setup, nets, progress, NonFiniteWatch(device, progress.step), step_runner(setup, log),
                       saved=(resume_from[1], progress.step) if resume_from is not None else None)
    log(describe(state))
    note = mismatched_norm(loss, parts)
    if note:
        log(note)
    if resume_from is not None:
        lost = "" if resume_from[1] == paths.last_checkpoint or cfg.checkpoint else \
            f" (its last.pt is missing: a save was cut short; {resume_from[1].name} is the newest whole checkpoint)"
        log(f"resuming from {resume_from[1]} at epoch {progress.epoch}, step {progress.step}"
            + (f" ({progress.epoch_step} steps into epoch {progress.epoch + 1})" if progress.epoch_step else "")
            + lost)
    # 4. a new run's first grids; config.json either way
    world.on_main(lambda: write_first_files(state, fresh=resume_from is None), device)
    return state


def checked_request(cfg: TrainConfig, parts: Parts, world: World, flags: Collection[str] | None = None
                    ) -> tuple[TrainConfig, RunPaths, tuple[dict, Path] | None]:
    """The config made concrete (run name, parts, the loss's defaults), the run's folders, and with --resume the
    checkpoint to continue from (payload, path), checked before any data is loaded."""
    paths = paths_of(cfg)
    if cfg.resume:
        cfg, payload, path = resume_request(cfg, paths, parts, world, flags)
        return cfg, paths, (payload, path)
    cfg = parts.named(cfg)
    cfg.check_parts()
    cfg = dataclasses.replace(cfg.resolved(parts.loss_of(cfg)), run=paths.name)
    world.local_batch(cfg.batch_size)  # refuses a batch the processes cannot share
    if not cfg.overwrite and (paths.last_checkpoint.exists() or paths.epoch_checkpoints()):
        raise UserError(f"run '{paths.name}' already has checkpoints in {paths.checkpoints}: pass --resume to "
                        "continue it, --overwrite to start it again, or choose another --run name")
    return cfg, paths, None


def prepare_on_main(cfg: TrainConfig, parts: Parts, paths: RunPaths, device: torch.device, log: Log
                    ) -> tuple[ImageData, Evaluator | None]:
    """Rank 0, before the networks: decode the data into the cache (the other ranks then read it), try the networks
    given as objects on images of its size, build the evaluator, and only then, with all known to work, clear the
    run's folders."""
    data = load_data(cfg, log, progress=cfg.progress)
    parts.check_calls(fitted_to_data(cfg, data))
    evaluator = new_evaluator(fitted_to_data(cfg, data), device, log) if cfg.eval_every else None
    clear_folders(cfg, paths, log)
    return data, evaluator


def load_data(cfg: TrainConfig, log: Log, progress: bool) -> ImageData:
    data = load_image_data(cfg.data, cfg.image_size, cfg.channels, root_or_default(cfg.data_dir, "data"),
                           cfg.download, progress=progress).head(cfg.limit)
    log(data.summary())
    if len(data) < cfg.batch_size:
        raise UserError(f"{len(data)} images are fewer than one batch of {cfg.batch_size}: lower --batch-size "
                        "or use more images")
    return data


def fitted_to_data(cfg: TrainConfig, data: ImageData) -> TrainConfig:
    """The config with the data's channel count and, for a conditional run, its class count."""
    return dataclasses.replace(cfg, channels=data.channels, classes=conditional_classes(cfg, data))


def new_networks(cfg: TrainConfig, parts: Parts, loss: Loss, plan: SpeedPlan, world: World,
                 device: torch.device) -> Networks:
    """Freshly initialised networks (seed torch first) or the ones given, their optimizers, and how the step calls
    them."""
    generator, discriminator = build_networks(cfg, parts)
    if cfg.sync_bn:
        generator, discriminator = (with_sync_batchnorm(net, world, device) for net in (generator, discriminator))
    generator.to(device)
    discriminator.to(device)
    g_forward, d_forward = prepare_networks(plan, generator, discriminator, wrap=lambda net: world.wrap(net, device))
    return Networks(generator, discriminator, adam(generator.parameters(), cfg.lr_g, cfg, plan),
                    adam(discriminator.parameters(), cfg.lr_d, cfg, plan), g_forward, d_forward,
                    d_forward_for_g=d_forward if not world.distributed else prepare_networks(plan, discriminator)[0],
                    ema_generator=ema_copy(generator) if cfg.ema else None)


def mismatched_norm(loss: Loss, parts: Parts) -> str:
    """A note when the loss's penalty wants a D normalised per image and the D given has BatchNorm ("" otherwise)."""
    if loss.critic_norm != "layer" or parts.discriminator is None:
        return ""
    if not any(isinstance(module, torch.nn.modules.batchnorm._BatchNorm) for module in parts.discriminator.modules()):
        return ""
    return ("note: the loss's penalty is per image, and the discriminator given has BatchNorm layers, which mix the "
            "images of a batch: layer norm (nn.GroupNorm(1, channels)) suits it better")


def new_progress(cfg: TrainConfig, world: World, device: torch.device) -> Progress:
    """Nothing trained yet: the random streams seeded, the running means empty."""
    data_rng = torch.Generator().manual_seed(cfg.seed + 1)
    return Progress(data_rng, torch.Generator(device=device).manual_seed(noise_seed(cfg.seed, world.rank)),
                    epoch_rng=data_rng.get_state(), epoch_means=RunningMeans(device),
                    window_means=RunningMeans(device))


def describe(state: TrainState) -> str:
    """The run's line: device, speed settings, where the data sits, steps per epoch."""
    setup = state.setup
    cfg, world = setup.cfg, setup.world
    where = "on the device" if isinstance(setup.batches, DeviceBatches) else "streamed from the cache"
    processes = f", {world.size} processes of {cfg.batch_size // world.size}" if world.distributed else ""
    given = "; given: " + ", ".join(f"{name} {entry['class']}" + (f" ({entry['parameters']:,} parameters)"
                                                                   if "parameters" in entry else "")
                                    for name, entry in setup.given.items()) if setup.given else ""
    return (f"run '{cfg.run}' on {setup.device} ({setup.plan.describe()}; data {where}): {setup.steps_per_epoch} "
            f"steps of {cfg.batch_size} images per epoch{processes}{given}")


def write_first_files(state: TrainState, fresh: bool) -> None:
    """Rank 0, once set up: a fresh run's real.png and epoch_000.png; every run's config.json."""
    if fresh:
        save_grid(to_signed(torch.tensor(state.setup.data.images[:REAL_COUNT])), state.paths.real_grid, nrow=8)
        state.save_epoch_grid(0)
    settings = {**dataclasses.asdict(state.cfg), **({"given": state.setup.given} if state.setup.given else {})}
    atomic_write_text(state.paths.config_json, json.dumps(settings, indent=2) + "\n")


def new_evaluator(cfg: TrainConfig, device: torch.device, log: Log) -> Evaluator:
    return Evaluator(cfg, cfg.eval_n, cfg.eval_features, device, root_or_default(cfg.checkpoints_dir, "checkpoints"),
                     progress=cfg.progress, log=log, inception_weights=cfg.inception_weights)


def clear_folders(cfg: TrainConfig, paths: RunPaths, log: Log) -> None:
    """--overwrite: delete the files the run wrote before (only now that data and evaluator are known to load), by
    their exact names, and nothing else: a user's own files, folders and links stay, and are named. Every run: the
    temporary files of writes a killed process never finished."""
    written, other = paths.written_files()
    if cfg.overwrite and not cfg.resume:
        for path in written:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the TensorBoard folder, when it held only event files
            (paths.checkpoints / TENSORBOARD_FOLDER).rmdir()
        if other:
            shown = ", ".join(str(path) for path in other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5
                                                                  else "")
            log(f"--overwrite kept {len(other)} file(s) or folder(s) that dcgan did not write: {shown}")
    else:
        for path in written:
            if TEMPORARY_FILE.fullmatch(path.name):
                path.unlink(missing_ok=True)


def conditional_classes(cfg: TrainConfig, data: ImageData) -> int:
    """The class count of a conditional run (0 otherwise), checked against the data's labels."""
    if not cfg.conditional:
        return 0
    if data.labels is None:
        raise UserError(f"--conditional needs a labelled dataset ({labelled_names()}); {data.source} has no "
                        "labels: drop --conditional")
    found = max(len(data.classes), int(data.labels.max()) + 1)
    if cfg.classes and cfg.classes != found:
        raise UserError(f"--classes {cfg.classes} does not match the {found} classes of {data.source}: "
                        "drop --classes")
    return found
