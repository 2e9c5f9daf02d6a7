"""One reference to a trained run, shared by sample, evaluate, nearest, export and the notebooks, and the run it
loads: G ready to draw, its config, what was saved, where the run's files go.

    run = RunReference(run="fm32", device="cpu").load()       # or load_run(run="fm32", device="cpu")
    images = generate(run.generator, noise_for(16, run.cfg.nz, seed=0))

A reference names a run (checkpoints/<run>/last.pt) or a checkpoint: a checkpoint file or a folder written by
`dcgan export`. Each mistake in it is one UserError line, raised before anything is read. A run trained with a G
passed as an object (models/parts.py) is loaded into such an object: `RunReference(run="mine", generator=TinyG())`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import check_run_name
from ..config import TrainConfig
from ..device import pick_device
from ..errors import UserError
from ..files import UnreadableFile, read_json
from ..paths import RunPaths, eval_result_path, latest_run, root_or_default, run_paths
from ..registry import WEIGHTS
from .checkpoint import load_checked, restore_generator
from .export import MAX_CONFIG_BYTES, load_export
from .standing import EMA_STATISTICS, settle_statistics

MISSING = "no run named: this needs --run NAME or --checkpoint PATH (a checkpoint file or a folder written by export)"


@dataclass(frozen=True)
class RunReference:
    """Which run to load, and the folders and device of the commands that use it."""

    run: str = ""              # a run name: checkpoints/<run>/last.pt
    checkpoint: str = ""       # or a checkpoint file, or a folder written by export (instead of last.pt)
    checkpoints_dir: str = ""  # root of the runs' checkpoints (empty: the repo's checkpoints/)
    samples_dir: str = ""      # root of the runs' pictures (empty: the repo's samples/)
    data_dir: str = ""         # folder of datasets (empty: the repo's data/; a checkpoint never chooses one)
    device: str = "auto"       # where G runs: auto, cpu or cuda
    weights: str = "auto"      # which of a checkpoint's generators: a name of registry.WEIGHTS
    generator: nn.Module | None = None  # a G to load the weights into (needed for a run trained with a G object)

    def __post_init__(self) -> None:
        if not self.run and not self.checkpoint:
            raise UserError(MISSING)
        if self.run:
            check_run_name(self.run)
        WEIGHTS.check(self.weights)

    @property
    def is_export(self) -> bool:
        """Whether --checkpoint names a folder (one written by export)."""
        return bool(self.checkpoint) and Path(self.checkpoint).is_dir()

    @property
    def shown(self) -> str:
        """The reference in a message: the checkpoint when one is named, else the run."""
        return self.checkpoint or self.run

    def source(self) -> Path:
        """The checkpoint file or export folder to load: --checkpoint, else the run's last.pt; a UserError when
        there is none."""
        if self.is_export:
            return Path(self.checkpoint)
        return run_paths(self.run, "", self.checkpoints_dir).checkpoint_file(self.checkpoint)

    def load(self) -> LoadedRun:
        """The run: G with the asked-for weights (eval mode, on the device), its config and what was saved."""
        source = self.source()
        device = pick_device(self.device)
        if self.is_export:
            generator, cfg, saved = load_export(source, self.generator)
            weights = exported_weights(saved, source, self.weights)
        else:
            saved, cfg = load_checked(source)  # (its config validated there, once)
            generator, weights = WEIGHTS.spec(self.weights)(saved, source, cfg, self.generator)
        return LoadedRun(self, generator.to(device).eval(), cfg, saved, source, weights, device)


@dataclass(frozen=True)
class LoadedRun:
    """A run loaded from its reference."""

    reference: RunReference
    generator: nn.Module  # eval mode, on `device`
    cfg: TrainConfig      # the settings it was trained with (without the saving machine's folders)
    saved: dict[str, Any]  # the whole checkpoint, or an export's config.json
    source: Path          # the checkpoint file or export folder it came from
    weights: str          # "ema" (the moving average of G) or "raw"; an export folder's own word for them
    device: torch.device

    @property
    def name(self) -> str:
        """The run's name: --run when given, else the one it was trained under."""
        return self.reference.run or self.cfg.run

    @property
    def epoch(self) -> int:
        return int(self.saved["epoch"])

    @property
    def step(self) -> int:
        return int(self.saved["step"])

    @property
    def paths(self) -> RunPaths:
        """Where the run's files go: samples/<run>/ and checkpoints/<run>/ under the reference's roots."""
        return run_paths(self.name, self.reference.samples_dir, self.reference.checkpoints_dir)

    @property
    def checkpoints_root(self) -> Path:
        return root_or_default(self.reference.checkpoints_dir, "checkpoints")

    @property
    def data_root(self) -> Path:
        return root_or_default(self.reference.data_dir, "data")

    def measured_fid(self) -> dict[str, Any] | None:
        """The epoch's FID measurement (evaluate, --eval-every) when one was written beside the checkpoint."""
        try:
            result = read_json(eval_result_path(self.source.parent, self.epoch), MAX_CONFIG_BYTES)
            return {"fid": float(result["fid"]), "features": str(result["features"]),
                    "n": int(result.get("n_fake", 0))}
        except (UnreadableFile, ValueError, KeyError, TypeError, OverflowError):
            return None


# The specs of registry.WEIGHTS: (G of a loaded checkpoint with those weights, "ema" or "raw"), built from its
# config or loaded into `given`

def auto_weights(saved: dict[str, Any], path: Path, cfg: TrainConfig,
                 given: nn.Module | None = None) -> tuple[nn.Module, str]:
    """The moving average of G when the run kept one (--ema), else G's own weights."""
    return (ema_weights if saved.get("generator_ema") is not None else raw_weights)(saved, path, cfg, given)


def ema_weights(saved: dict[str, Any], path: Path, cfg: TrainConfig,
                given: nn.Module | None = None) -> tuple[nn.Module, str]:
    if saved.get("generator_ema") is None:
        raise UserError(f"checkpoint {path} has no moving average of G (the run had no --ema): use --weights raw")
    generator = restore_generator(saved, path, cfg, "generator_ema", given)
    if saved.get("ema_statistics") != EMA_STATISTICS:  # saved before the average had statistics of its own
        settle_statistics(generator, cfg.nz, cfg.batch_size)
    return generator, "ema"


def raw_weights(saved: dict[str, Any], path: Path, cfg: TrainConfig,
                given: nn.Module | None = None) -> tuple[nn.Module, str]:
    return restore_generator(saved, path, cfg, "generator", given), "raw"


def exported_weights(settings: dict[str, Any], folder: Path, weights: str) -> str:
    """The weights an export folder holds (its config.json says which); a UserError when others were asked for."""
    held = settings["weights"]
    if weights != "auto" and weights != held:
        raise UserError(f"export {folder} holds {held or 'unnamed'} weights, not {weights}: use --weights auto, or "
                        f"export the run again with --weights {weights}")
    return held


def load_run(**reference: Any) -> LoadedRun:
    """The run the keywords name (RunReference's fields): load_run(run="fm32", device="cpu")."""
    return RunReference(**reference).load()


def load_generator(path: Path | str, device: torch.device | str = "cpu", weights: str = "auto",
                   generator: nn.Module | None = None) -> LoadedRun:
    """The run of a checkpoint file or of a folder written by `dcgan export` (`generator`: a G to load the weights
    into, for one that was passed to train() as an object)."""
    device = device if isinstance(device, str) else device.type
    return RunReference(checkpoint=str(path), device=device, weights=weights, generator=generator).load()


def load_notebook_run(reference: RunReference, say: Callable[[str], None] = print) -> LoadedRun:
    """`reference.load()` for a notebook's parameters. A named checkpoint is loaded whatever the run is; when the
    run has no checkpoint, the run written most recently is loaded instead, and said. Mistakes are told in the
    parameters' words."""
    if reference.checkpoint:
        if not Path(reference.checkpoint).exists():
            raise UserError(f'no checkpoint at {reference.checkpoint}: set checkpoint = "..." to an existing file or '
                            'exported folder, or checkpoint = "" to load a run by its name')
        return dataclasses.replace(reference, run="").load()
    root = root_or_default(reference.checkpoints_dir, "checkpoints")
    if not (root / reference.run / "last.pt").is_file():
        found = latest_run(root)
        if found is None:
            raise UserError(f'no trained run in {root}: train one first (notebook 02, or python -m dcgan train), '
                            'or set checkpoints_dir = "..." to the folder that holds your runs')
        say(f"run '{reference.run}' has no checkpoint in {root}: using '{found}', the run written most recently "
            'there (set run = "..." to choose another)')
        reference = dataclasses.replace(reference, run=found)
    return reference.load()
