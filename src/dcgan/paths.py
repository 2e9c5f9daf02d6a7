"""Where the repo's data/, samples/ and checkpoints/ folders are, wherever Python was started; and every file the
tool writes into a run's folders, by exact name (what --overwrite may delete, what counts as an epoch's file)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .checks import RUN_NAME_MAX

# The files dcgan writes into samples/<run>/ (train, sample, nearest, and the notebooks through the package)...
SAMPLE_FILES = re.compile(r"real\.png|epoch_\d{3,}\.png|progress\.gif|losses\.png|interpolation\.gif|nearest\.png"
                          r"|compare\.png|variants\.png|latent_(interpolation|walks)\.png|latent_sweep_z\d+\.png"
                          r"|sample_seed\d+(_class\d+)?\.png")
# ...into checkpoints/<run>/, besides the run's lock (lock.py), which its owner removes...
CHECKPOINT_FILES = re.compile(r"epoch_\d{3,}\.pt|last\.pt|best\.pt|config\.json|history\.csv"
                              r"|(eval|nearest)_\d{3,}\.json")
LOCK_FILE = "train.lock"
TENSORBOARD_FOLDER = "tb"  # ...into checkpoints/<run>/tb/ (TensorBoard's event files)...
TENSORBOARD_FILES = re.compile(r"events\.out\.tfevents\..+")
# ...and the temporary file of a write in progress: .<one of those names>.<random>[.link].tmp (files.py)
TEMPORARY_FILE = re.compile(r"\.(?P<name>.+)\.\w+(\.link)?\.tmp")
EPOCH_FILE = re.compile(r"epoch_(\d{3,})\.(png|pt)")
SOURCE_FOLDERS = ("src", "tests", "notebooks", "benchmarks", "docs", ".git", ".ci")  # a checkout's own folders


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

    def epoch_grids(self) -> list[Path]:
        return epoch_files(self.samples, "png")

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
        return epoch_files(self.checkpoints, "pt")

    def written_files(self) -> tuple[list[Path], list[Path]]:
        """(the regular files of the run's folders that dcgan wrote, by exact name; everything else there, which
        is never deleted): folders, links and other people's files are in the second list."""
        written, other = [], []
        for folder, names in ((self.samples, SAMPLE_FILES), (self.checkpoints, CHECKPOINT_FILES)):
            for path in entries(folder):
                if path.name == TENSORBOARD_FOLDER and folder == self.checkpoints and is_plain_folder(path):
                    for event in entries(path):
                        (written if TENSORBOARD_FILES.fullmatch(event.name) and is_regular(event) else other
                         ).append(event)
                elif path.name != LOCK_FILE:
                    (written if is_regular(path) and is_written_name(path.name, names) else other).append(path)
        return written, other

    def checkpoint_file(self, explicit: str = "") -> Path:
        """`explicit` when given, else the run's last.pt; a UserError when that file does not exist."""
        from .errors import UserError

        path = Path(explicit) if explicit else self.last_checkpoint
        if not path.is_file():
            raise UserError(f"no checkpoint at {path}: train run '{self.name}' first, or pass --checkpoint PATH")
        return path


def epoch_files(folder: Path, extension: str) -> list[Path]:
    """The folder's epoch_NNN.<extension> files, by exact name, in epoch order (epoch_1000 after epoch_999); only
    regular files (a folder or a link of that name is not dcgan's)."""
    numbered = []
    for path in entries(folder):
        match = EPOCH_FILE.fullmatch(path.name)
        if match and match[2] == extension and is_regular(path):
            numbered.append((int(match[1]), path))
    return [path for _, path in sorted(numbered)]


def epoch_number(path: Path) -> int:
    """samples/<run>/epoch_007.png -> 7."""
    return int(EPOCH_FILE.fullmatch(Path(path).name)[1])


def is_written_name(name: str, names: re.Pattern) -> bool:
    """A name dcgan writes, or the temporary file of a write of one."""
    temporary = TEMPORARY_FILE.fullmatch(name)
    return bool(names.fullmatch(name) or (temporary and names.fullmatch(temporary["name"])))


def entries(folder: Path) -> list[Path]:
    """What a folder holds, sorted ([] when it is missing or not a folder); links are listed, never followed."""
    try:
        return sorted(Path(folder) / name for name in os.listdir(folder)) if is_plain_folder(folder) else []
    except OSError:
        return []


def is_regular(path: Path) -> bool:
    """A regular file itself, not a link to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_plain_folder(path: Path) -> bool:
    """A folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def source_folders() -> list[Path]:
    """The folders of this checkout's own files (src/, tests/, .git/, ...): no run may write into them."""
    root = repo_root()
    return [root / name for name in SOURCE_FOLDERS] if is_repo_root(root) else []


def eval_result_path(folder: Path, epoch: int) -> Path:
    """The measurements of an epoch (evaluate, --eval-every), beside its checkpoint: eval_NNN.json."""
    return Path(folder) / f"eval_{epoch:03d}.json"


def default_run_name(data: str, image_size: int) -> str:
    """fashion-mnist + 32 -> 'fashion-mnist-32'; a folder path -> its last part, e.g. 'anime-64'."""
    stem = Path(data.rstrip("/\\")).name or "run"
    suffix = f"-{image_size}"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:RUN_NAME_MAX - len(suffix)].strip("-")
    return f"{name or 'run'}{suffix}"


def latest_run(checkpoints_root: Path) -> str | None:
    """The run under `checkpoints_root` whose last.pt was written most recently; None when there is none."""
    written = [path for path in Path(checkpoints_root).glob("*/last.pt") if path.is_file()]
    return max(written, key=lambda path: path.stat().st_mtime).parent.name if written else None


def run_paths(run: str, samples_dir: str = "", checkpoints_dir: str = "") -> RunPaths:
    return RunPaths(run, root_or_default(samples_dir, "samples") / run,
                    root_or_default(checkpoints_dir, "checkpoints") / run)
