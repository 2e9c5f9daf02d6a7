"""Where the repo's data/, samples/ and checkpoints/ folders are, wherever Python was started."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def is_repo_root(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "src" / "dcgan").is_dir()


def repo_root() -> Path:
    """The checkout this package belongs to.

    Looks upwards from the working directory first (so a notebook in notebooks/ finds the repo above it),
    then at the package's own location (an editable install); falls back to the working directory.
    """
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if is_repo_root(folder):
            return folder
    package_checkout = Path(__file__).resolve().parents[2]
    if is_repo_root(package_checkout):
        return package_checkout
    return cwd


def root_or_default(configured: str, default_name: str) -> Path:
    """A configured folder, or the repo's top-level folder of that name when none is configured."""
    return Path(configured).expanduser() if configured else repo_root() / default_name


@dataclass(frozen=True)
class RunPaths:
    """Every file a run writes: samples/<run>/... and checkpoints/<run>/..."""

    name: str
    samples: Path
    checkpoints: Path

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:03d}.png"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:03d}.pt"

    @property
    def real_grid(self) -> Path:
        return self.samples / "real.png"

    @property
    def progress_gif(self) -> Path:
        return self.samples / "progress.gif"

    @property
    def interpolation_gif(self) -> Path:
        return self.samples / "interpolation.gif"

    def epoch_grids(self) -> list[Path]:
        return sorted(self.samples.glob("epoch_[0-9][0-9][0-9]*.png"))

    @property
    def losses_plot(self) -> Path:
        return self.samples / "losses.png"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def config_json(self) -> Path:
        return self.checkpoints / "config.json"

    @property
    def history_csv(self) -> Path:
        return self.checkpoints / "history.csv"

    def epoch_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.glob("epoch_[0-9][0-9][0-9]*.pt"))

    def checkpoint_file(self, explicit: str = "") -> Path:
        """`explicit` when given, else the run's last.pt; a UserError when that file does not exist."""
        from .errors import UserError

        path = Path(explicit) if explicit else self.last_checkpoint
        if not path.is_file():
            raise UserError(f"no checkpoint at {path}: train run '{self.name}' first, or pass --checkpoint PATH")
        return path


def eval_result_path(folder: Path, epoch: int) -> Path:
    """The measurements of an epoch (evaluate, --eval-every), beside its checkpoint: eval_NNN.json."""
    return Path(folder) / f"eval_{epoch:03d}.json"


def default_run_name(data: str, image_size: int) -> str:
    """fashion-mnist + 32 -> 'fashion-mnist-32'; a folder path -> its last part, e.g. 'anime-64'."""
    stem = Path(data.rstrip("/\\")).name or "run"
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '-', stem).strip('-') or 'run'}-{image_size}"


def latest_run(checkpoints_root: Path) -> str | None:
    """The run under `checkpoints_root` whose last.pt was written most recently; None when there is none."""
    written = [path for path in Path(checkpoints_root).glob("*/last.pt") if path.is_file()]
    return max(written, key=lambda path: path.stat().st_mtime).parent.name if written else None


def run_paths(run: str, samples_dir: str = "", checkpoints_dir: str = "") -> RunPaths:
    return RunPaths(run, root_or_default(samples_dir, "samples") / run,
                    root_or_default(checkpoints_dir, "checkpoints") / run)
