"""One process owns a run: the lock in checkpoints/<run>/train.lock, taken atomically, released on every way out,
taken over from a process that died; readers never wait for it. And the other ways a run ends early: a closed
stdout, a signal while the run is starting."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan import TrainingStopped, UserError, train
from dcgan.cli import main
from dcgan.lock import RunLock
from dcgan.models.checkpoint import load_checkpoint
from dcgan.paths import LOCK_FILE as LOCK_NAME
from dcgan.training.callbacks import Callback


def run_flags(root: Path, run: str, seed: int, epochs: int) -> list[str]:
    return ["train", "--data", "synthetic", "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--limit", "256", "--batch-size", "16", "--epochs", str(epochs), "--seed", str(seed), "--run", run,
            "--no-progress", "--device", "cpu", "--data-dir", str(root / "data"),
            "--samples-dir", str(root / "samples"), "--checkpoints-dir", str(root / "checkpoints")]


def dcgan(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dcgan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_second_process_on_the_same_run_stops_naming_the_owner_and_mixes_nothing(tmp_path):
    folder = tmp_path / "checkpoints" / "same"
    first = dcgan(*run_flags(tmp_path, "same", seed=1, epochs=400))  # long enough to be stopped by us
    try:
        wait_for(lambda: (folder / "last.pt").is_file())  # training, with a checkpoint written
        record = json.loads((folder / LOCK_NAME).read_text())
        assert record["pid"] == first.pid
        second = dcgan(*run_flags(tmp_path, "same", seed=2, epochs=3))
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2, stderr
        assert stderr.count("\n") == 1 and f"run 'same' is being trained by process {first.pid}" in stderr
        # a reader may use the run while it trains: last.pt is replaced atomically, never half-written
        assert main(["sample", "--run", "same", "--checkpoints-dir", str(tmp_path / "checkpoints"), "--n", "4",
                     "--out", str(tmp_path / "grid.png")]) == 0
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    assert not (folder / LOCK_NAME).exists()  # released on the way out
    assert json.loads((folder / "config.json").read_text())["seed"] == 1
    assert {load_checkpoint(path)["config"]["seed"] for path in folder.glob("*.pt")} == {1}


def test_a_lock_held_elsewhere_refuses_the_run_before_anything_is_written(small_config, tmp_path):
    with RunLock(tmp_path / "checkpoints" / "test", "test"):  # another open file: conflicts like a process
        with pytest.raises(UserError, match=f"run 'test' is being trained by process {os.getpid()}"):
            train(small_config(), log=lambda line: None)
        assert sorted(path.name for path in (tmp_path / "checkpoints" / "test").iterdir()) == [LOCK_NAME]
    assert not (tmp_path / "samples" / "test").exists()
    train(small_config(epochs=1), log=lambda line: None)  # released: the run starts


def test_two_runs_sharing_a_samples_folder_never_train_at_once(tmp_path):
    """The same run name, two --checkpoints-dir, one --samples-dir: the second is refused in one line naming the
    samples folder, and the first's grids and GIF are its own."""
    samples = tmp_path / "samples" / "shared"
    first = dcgan(*run_flags(tmp_path, "shared", seed=1, epochs=400))
    try:
        wait_for(lambda: (tmp_path / "checkpoints" / "shared" / "last.pt").is_file())
        flags = run_flags(tmp_path, "shared", seed=2, epochs=2)
        flags[flags.index("--checkpoints-dir") + 1] = str(tmp_path / "other-checkpoints")
        second = dcgan(*flags)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2 and stderr.count("\n") == 1, stderr
        assert f"is being trained by process {first.pid} since " in stderr
        assert f", which writes into {samples}:" in stderr
        assert not (tmp_path / "other-checkpoints" / "shared").exists()  # nothing of the second run was written
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert not (samples / LOCK_NAME).exists()  # released on the way out, both folders
    assert not (tmp_path / "checkpoints" / "shared" / LOCK_NAME).exists()


def test_a_samples_folder_held_by_another_refuses_the_run_and_releases_the_checkpoints_lock(small_config, tmp_path):
    with RunLock(tmp_path / "samples" / "test", "test"):
        with pytest.raises(UserError, match=rf"process {os.getpid()} since .*, which writes into "
                                            rf"{re.escape(str(tmp_path / 'samples' / 'test'))}:"):
            train(small_config(), log=lambda line: None)
    assert not (tmp_path / "checkpoints" / "test").exists()  # the lock it took first is gone, and its folder
    train(small_config(epochs=1), log=lambda line: None)


def test_a_full_disk_when_the_lock_is_written_is_one_line_and_leaves_no_lock(small_config, tmp_path, monkeypatch):
    import errno

    from dcgan import lock as lock_module
    from dcgan.files import WriteError

    train(small_config(epochs=1), log=lambda line: None)
    last = tmp_path / "checkpoints" / "test" / "last.pt"
    before = last.read_bytes()

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_module.os, "pwrite", full)
    with pytest.raises(WriteError) as refused:
        train(small_config(epochs=2, resume=True), log=lambda line: None)
    message = str(refused.value)
    assert "\n" not in message and f"cannot write the run's lock {last.parent / LOCK_NAME}" in message
    assert "No space left on device" in message and "free some disk space" in message
    assert not (last.parent / LOCK_NAME).exists() and last.read_bytes() == before  # nothing left, nothing lost
    monkeypatch.undo()
    train(small_config(epochs=2, resume=True), log=lambda line: None)  # space again: the run goes on


def test_the_lock_of_a_process_that_died_is_taken_over_with_a_note(small_config, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock = tmp_path / "checkpoints" / "test" / LOCK_NAME
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "started": "2026-01-01 00:00:00"}))
    lines = []
    train(small_config(epochs=1), log=lines.append)
    assert any(f"was locked by process {pid}" in line and "taking the lock over" in line for line in lines)
    assert not lock.exists()


class LockWatch(Callback):
    """Reads the lock file at every step."""

    def __init__(self, path):
        self.path, self.owners = path, []

    def on_step_end(self, state):
        self.owners.append(json.loads(self.path.read_text())["pid"])


def test_overwrite_keeps_the_lock_it_holds_and_every_way_out_releases_it(small_config, tmp_path):
    lock = tmp_path / "checkpoints" / "test" / LOCK_NAME
    train(small_config(epochs=1), log=lambda line: None)
    watch = LockWatch(lock)
    train(small_config(epochs=1, overwrite=True), [watch], log=lambda line: None)
    assert watch.owners and set(watch.owners) == {os.getpid()}  # --overwrite emptied the folder, not the lock
    assert not lock.exists()
    with pytest.raises(UserError, match="already has checkpoints"):  # a refusal
        train(small_config(epochs=1), log=lambda line: None)
    assert not lock.exists()

    class Boom(Callback):
        def on_step_end(self, state):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):  # a crash
        train(small_config(epochs=2, resume=True), [Boom()], log=lambda line: None)
    assert not lock.exists()


def test_a_closed_stdout_saves_and_stops_like_a_signal(small_config, tmp_path, monkeypatch):
    """`train ... | head`: the first line that meets the closed pipe makes the run save at the end of the step and
    stop (exit code 141), and --resume continues from there."""
    monkeypatch.setattr("dcgan.training.signals.silence_stdout", lambda: None)  # pytest owns this stdout

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(TrainingStopped, match="stopped by a closed stdout at the end of epoch 1") as stop:
        train(small_config(epochs=3), log=log)
    assert stop.value.exit_code == 141
    assert load_checkpoint(tmp_path / "checkpoints" / "test" / "last.pt")["epoch"] == 1
    assert train(small_config(epochs=2, resume=True), log=lambda line: None).epoch == 2


def test_a_command_line_run_piped_into_head_ends_quietly(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "dcgan", *run_flags(tmp_path, "piped", 0, 400)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.readline()  # what `head -n 1` does: read a line, then close
    child.stdout.close()
    stderr = child.stderr.read()
    child.wait(timeout=120)
    assert child.returncode == 141, stderr
    assert stderr.startswith("stopped by a closed stdout") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_sigterm_while_the_cache_is_built_says_so_and_leaves_no_partial_file(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(1500):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    flags = run_flags(tmp_path, "slow", 0, 1)
    flags[flags.index("synthetic")] = str(folder)
    child = dcgan(*flags)
    cache = tmp_path / "data" / ".cache"
    wait_for(lambda: cache.is_dir() and any(cache.glob("*.partial")))
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert stderr.startswith("stopped by SIGTERM while the run was starting") and stderr.count("\n") == 1, stderr
    assert not list(cache.glob("*.partial"))
    assert not (tmp_path / "checkpoints" / "slow").exists()  # lock released, the folder it made removed


def test_a_write_error_names_what_is_wrong_with_the_path(tmp_path):
    from dcgan.files import WriteError, atomic_write_bytes, make_folder

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(WriteError, match="is a file, not a folder"):
        make_folder(tmp_path / "a-file" / "run")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(WriteError, match="a-folder is a folder: name a file"):
        atomic_write_bytes(tmp_path / "a-folder", b"x")
    with pytest.raises(WriteError, match="too long"):
        atomic_write_bytes(tmp_path / ("n" * 300) / "x.png", b"x")
