"""A full disk under any folder a command writes is one line: exit code 2, the file or folder named with the cause
and what to do next, no traceback, no temporary or half-written file left, every earlier file intact. Each case
runs on a modelled full folder (every write under it fails as a full disk fails it, at the flush to disk) and,
where the machine lets a test mount a small file system, on a really full one. (TensorBoard's event files, written
by a thread of their library: tests/training/test_tensorboard_full_disk.py; the lock's record:
tests/shared/test_run_lock.py.)"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan.cli import main
from dcgan.models.checkpoint import load_checkpoint
from tests.helpers import files_under, small_disk, tiny_run_flags

FLAGS_OF = {  # each command's folder flags, under `root`; the full folder is passed in place of one of them
    "train": lambda root: ["train", *map(str, tiny_run_flags(root, "r")), "--epochs", "2", "--device", "cpu"],
    "sample": lambda root: ["sample", "--run", "base", "--checkpoints-dir", str(root / "checkpoints"),
                            "--samples-dir", str(root / "samples"), "--device", "cpu"],
    "export": lambda root: ["export", "--run", "base", "--checkpoints-dir", str(root / "checkpoints"),
                            "--device", "cpu"],
    "nearest": lambda root: ["nearest", "--run", "base", "--checkpoints-dir", str(root / "checkpoints"),
                             "--samples-dir", str(root / "samples"), "--data-dir", str(root / "data"), "--n", "32",
                             "--device", "cpu", "--no-progress"],
    "prepare": lambda root: ["prepare", str(root / "pictures"), "--size", "32", "--workers", "1", "--no-progress"],
}
# (command, the flag whose folder is full (or "DST"), the bytes still free there, what the line must end with)
CASES = [
    ("train", "--checkpoints-dir", 0, "free some disk space, then run again"),  # the lock's record
    ("train", "--checkpoints-dir", 8_000, "then start the run again (no checkpoint had been written yet)"),
    ("train", "--samples-dir", 12_000, "free some disk space; then run the command again"),  # epoch 0's grid
    ("train", "--data-dir", 0, "free some disk space, or pass --data-dir another folder"),
    ("sample", "--samples-dir", 0, "free some disk space"),
    ("sample", "--out", 0, "free some disk space"),
    ("export", "--out", 0, "free some disk space"),
    ("nearest", "--samples-dir", 0, "free some disk space"),
    ("prepare", "DST", 0, "then run prepare again with --overwrite"),
]
ENDINGS = (".tmp", ".partial")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A trained run 'base' (the one sample, export and nearest read), its cached data, and pictures to prepare."""
    root = tmp_path_factory.mktemp("full-disk")
    flags = [str(flag) for flag in tiny_run_flags(root, "base")]
    assert main(["train", *flags, "--epochs", "1", "--device", "cpu"]) == 0
    pictures = root / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(pictures / f"p{index}.png")
    return root


class FullFolder:
    """The disk under `folder` with `free` bytes left: a file written there that does not fit fails at its flush
    to disk with ENOSPC, as on a full disk."""

    def __init__(self, folder: Path, free: int = 0):
        self.folder, self.free, self.real = str(folder), free, os.fsync

    def fsync(self, fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(self.folder + os.sep):
            size = os.fstat(fd).st_size
            if size > self.free:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.free -= size
        self.real(fd)


def command_line(command: str, flag: str, root: Path, full: Path) -> list[str]:
    flags = FLAGS_OF[command](root)
    if flag == "DST":
        return [*flags[:2], str(full / "dst"), *flags[2:]]
    where = full / "out.png" if (command, flag) == ("sample", "--out") else full / "out" if flag == "--out" else full
    if flag in flags:
        flags[flags.index(flag) + 1] = str(where)
        return flags
    return [*flags, flag, str(where)]


@pytest.mark.parametrize("disk", ["modelled", "real"])
@pytest.mark.parametrize("command, flag, free, ending", CASES, ids=[f"{c} {f} {n}" for c, f, n, _ in CASES])
def test_a_full_folder_is_one_line_and_leaves_nothing_partial(root, tmp_path, capfd, monkeypatch, disk, command,
                                                               flag, free, ending):
    if command == "train":  # each case its own run, beside a copy of the cached data (a full --data-dir: decoded)
        shutil.copytree(root / "data", tmp_path / "data")
        root = tmp_path
    full = tmp_path / "full"
    with contextlib.ExitStack() as stack:
        if disk == "real":
            stack.enter_context(small_disk(full, "1m", free))
        else:
            full.mkdir()
            monkeypatch.setattr(os, "fsync", FullFolder(full, free).fsync)
        before = {path: path.read_bytes() for path in files_under(root) if path.is_file()}
        capfd.readouterr()
        code = main(command_line(command, flag, root, full))
        err = capfd.readouterr().err
        *_, line = err.splitlines()
        assert code == 2 and "Traceback" not in err, err
        assert line.startswith("error: cannot write ") and f"{full}" in line and "(No space left on device)" in line
        assert line.endswith(ending) or disk == "real", line  # (a real disk's pages round the space left)
        assert not [path for path in files_under(full) if path.name.endswith(ENDINGS)]
        assert all(path.read_bytes() == data for path, data in before.items() if path.exists())
        assert not list(full.rglob("train.lock"))


def test_after_a_full_disk_each_way_on_that_the_line_names_works(root, tmp_path, capfd, monkeypatch):
    """train: a fresh start when no checkpoint was written, --resume from the one named; prepare: --overwrite."""
    flags = FLAGS_OF["train"](tmp_path)
    shutil.copytree(root / "data", tmp_path / "data")
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", FullFolder(tmp_path / "checkpoints", free=8_000).fsync)
        assert main(flags) == 2
    *_, line = capfd.readouterr().err.splitlines()
    assert line.endswith("then start the run again (no checkpoint had been written yet)")
    assert main(flags) == 0  # started again, as the line said
    last = tmp_path / "checkpoints" / "r" / "last.pt"
    full = FullFolder(tmp_path / "checkpoints", free=8_000)
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full.fsync)
        assert main([*flags[:-4], "--epochs", "3", "--device", "cpu", "--resume"]) == 2
    *_, line = capfd.readouterr().err.splitlines()
    assert line.endswith(f"then continue the run with --resume (from {last}, step 6)")
    assert main([*flags[:-4], "--epochs", "3", "--device", "cpu", "--resume"]) == 0
    assert load_checkpoint(last)["epoch"] == 3

    dst = tmp_path / "dst"
    prepare = ["prepare", str(root / "pictures"), str(dst), "--size", "32", "--workers", "1", "--no-progress"]
    real_fsync, writes = os.fsync, []

    def full_after_five(fd):  # (the folder's own syncs aside)
        writes.extend([fd] * stat.S_ISREG(os.fstat(fd).st_mode))
        if len(writes) > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full_after_five)
        assert main(prepare) == 2
    *_, line = capfd.readouterr().err.splitlines()
    assert "DST holds the 5 images written before it" in line and len(list(dst.iterdir())) == 5
    assert main([*prepare, "--overwrite"]) == 0 and len(list(dst.iterdir())) == 12
