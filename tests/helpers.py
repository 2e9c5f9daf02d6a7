"""What tests in several files share: the repo's root, a log that prints nothing, the files under folders, the
settings of a run that trains in a second on the CPU, the command line in a new process, comparisons of runs, and a
really small disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageSequence

from dcgan import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def quiet(_line: str) -> None:
    """A log that prints nothing."""


def files_under(*roots: Path) -> set[Path]:
    """Every file and folder under those of `roots` that exist."""
    return {path for root in roots if root.exists() for path in root.rglob("*")}


def file_names(folder: Path) -> list[str]:
    """The files under `folder`, as sorted names relative to it ("x/a.png")."""
    return sorted(path.relative_to(folder).as_posix() for path in files_under(folder) if path.is_file())


def tiny_settings(root: Path, **overrides) -> dict:
    """The settings of a run that trains in a second: synthetic 32x32, narrow nets, its folders under `root`."""
    values = dict(data="synthetic", image_size=32, ngf=8, ndf=8, nz=16, batch_size=32, limit=128, epochs=2,
                  log_every=2, run="test", data_dir=str(root / "data"), samples_dir=str(root / "samples"),
                  checkpoints_dir=str(root / "checkpoints"), progress=False, device="cpu")
    return {**values, **overrides}


def tiny_config(root: Path, **overrides) -> TrainConfig:
    """tiny_settings as a TrainConfig."""
    return TrainConfig(**tiny_settings(root, **overrides))


def gif_frames(path: Path) -> list[Image.Image]:
    """The frames of a GIF as RGB images, in order."""
    with Image.open(path) as animation:
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(animation)]


def assert_same_training_state(first, second):
    """The two TrainStates hold equal networks and optimizer moments."""
    for net in ("generator", "discriminator"):
        a, b = getattr(first.nets, net).state_dict(), getattr(second.nets, net).state_dict()
        for name in a:
            assert torch.equal(a[name], b[name]), f"{net}.{name} differs"
    for opt in ("opt_g", "opt_d"):
        a, b = getattr(first.nets, opt).state_dict()["state"], getattr(second.nets, opt).state_dict()["state"]
        for index in a:
            for key in a[index]:
                assert torch.equal(a[index][key], b[index][key]), f"{opt} state {index}.{key} differs"


def without_timing(rows):
    """History rows without their timings, which differ from run to run."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in rows]


def dcgan(*args, cwd=None) -> subprocess.CompletedProcess:
    """`python -m dcgan ARGS` in a new process, its output captured."""
    return subprocess.run([sys.executable, "-m", "dcgan", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def tiny_run_flags(tmp_path, run):
    """The command-line flags of a tiny synthetic run named `run`, its folders under tmp_path."""
    return ["--data", "synthetic", "--image-size", 32, "--ngf", 8, "--ndf", 8, "--nz", 16, "--batch-size", 32,
            "--limit", 96, "--run", run, "--data-dir", tmp_path / "data", "--samples-dir", tmp_path / "samples",
            "--checkpoints-dir", tmp_path / "checkpoints", "--no-progress", "--log-every", 1]


@contextlib.contextmanager
def small_disk(folder: Path, size: str, free: int | None = None) -> Iterator[Path]:
    """A file system of `size` (a tmpfs) mounted at `folder`, filled to leave about `free` bytes when given, and
    unmounted after; the test skips where it may not mount one (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small file system needs root")
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small file system needs CAP_SYS_ADMIN")
    try:
        if free is not None:
            stats = os.statvfs(folder)
            with open(folder / "filler", "wb") as filler:
                filler.write(b"\0" * max(stats.f_bavail * stats.f_frsize - free, 0))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
