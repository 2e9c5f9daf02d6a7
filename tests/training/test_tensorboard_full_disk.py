"""A TensorBoard log that cannot be written (a full disk, a read-only folder) stops the run in one line: exit code 2,
no traceback (not even from the writer's thread), the last checkpoint intact and named, the event file cut back to
whole records, no lock left; once there is room the run goes on with --resume, each step once in its curves."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import tensorboard.compat.tensorflow_stub.io.gfile as gfile
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

from dcgan.cli import main
from dcgan.models.checkpoint import load_checkpoint
from dcgan.training.event_files import QuietWriterThreads, cut_to_whole_records, quiet_writer_threads
from tests.helpers import small_disk, tiny_run_flags
from tests.training.test_tensorboard import read_events

EPOCH_LINE_STARTS = ("synthetic shapes", "run 'r'", "epoch ")


class SmallDisk:
    """The disk under TensorBoard's event files with `free` bytes left: the write that passes them writes what fits,
    then fails with `number` (as write(2) does on a full disk); `partial` counts the bytes of records cut short."""

    def __init__(self, free: int, number: int = errno.ENOSPC):
        self.free, self.number, self.partial = free, number, 0

    def open(self, file, mode="r", **kwargs):
        handle = open(file, mode, **kwargs)
        return LimitedFile(handle, self) if "b" in mode and ("a" in mode or "w" in mode) else handle


class LimitedFile:
    def __init__(self, handle, disk: SmallDisk):
        self.handle, self.disk = handle, disk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data: bytes) -> int:
        if len(data) > self.disk.free:
            fits, self.disk.free = self.disk.free, 0
            self.handle.write(data[:fits])
            self.disk.partial += fits
            raise OSError(self.disk.number, os.strerror(self.disk.number))
        self.disk.free -= len(data)
        return self.handle.write(data)


def train_tiny(tmp_path: Path, capfd, *extra: str) -> tuple[int, list[str]]:
    flags = [str(flag) for flag in tiny_run_flags(tmp_path, "r")]
    code = main(["train", *flags, "--epochs", "3", "--device", "cpu", *extra])
    return code, capfd.readouterr().err.splitlines()


def assert_whole_records(folder: Path) -> None:
    """Every event file in `folder` is whole records only, each read back with its checksums."""
    for path in folder.glob("events.out.tfevents.*"):
        records = list(RawEventFileLoader(str(path)).Load())
        assert records and sum(len(record) + 16 for record in records) == path.stat().st_size


# where the disk fills: the writer's first record, the hparams, epoch 1's curves (no checkpoint yet in these),
# epoch 1's grid (after its checkpoint), epoch 3's curves
@pytest.mark.parametrize("free", [0, 60, 1_000, 14_300, 20_000, 28_000])
@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS])
def test_a_log_that_cannot_be_written_stops_the_run_in_one_line(tmp_path, capfd, monkeypatch, free, number):
    disk = SmallDisk(free, number)
    monkeypatch.setattr(gfile, "io", types.SimpleNamespace(open=disk.open))
    logs = tmp_path / "logs"
    code, lines = train_tiny(tmp_path, capfd, "--tensorboard", "--logdir", str(logs))
    assert code == 2
    *before, error = lines
    assert all(line.startswith(EPOCH_LINE_STARTS) for line in before), lines
    advice = "free some disk space" if number == errno.ENOSPC else f"make {logs / 'r'} writable, or write elsewhere"
    assert error.startswith(f"error: cannot write TensorBoard's log in {logs / 'r'} ({os.strerror(number)}): {advice}, "
                            "or leave TensorBoard out with --no-tensorboard; then ")
    last = tmp_path / "checkpoints" / "r" / "last.pt"
    if last.exists():
        step = load_checkpoint(last)["step"]
        assert error.endswith(f"then continue the run with --resume (from {last}, step {step})")
    else:
        assert error.endswith("then start the run again (no checkpoint had been written yet)")
    assert not list(tmp_path.rglob("train.lock")) and not list(tmp_path.rglob("*.tmp"))
    assert disk.partial > 0 or free == 0  # a record was cut short on disk...
    assert_whole_records(logs / "r")  # ...and is gone

    monkeypatch.undo()  # room again: the run goes on, and TensorBoard shows each step once
    time.sleep(1)  # (TensorBoard reads a folder's event files in name order: a time in seconds, then a counter of
    # this process's writers, whose 10th sorts before its 9th; a run started again by hand is seconds later)
    code, lines = train_tiny(tmp_path, capfd, "--tensorboard", "--logdir", str(logs), *["--resume"] * last.exists())
    assert code == 0, lines
    assert [point.step for point in read_events(logs / "r").Scalars("loss/D")] == list(range(1, 10))


def test_the_run_can_go_on_without_tensorboard(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(gfile, "io", types.SimpleNamespace(open=SmallDisk(20_000).open))
    assert train_tiny(tmp_path, capfd, "--tensorboard")[0] == 2
    monkeypatch.undo()
    assert train_tiny(tmp_path, capfd, "--resume", "--no-tensorboard")[0] == 0
    assert load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["epoch"] == 3


def test_a_really_full_disk_in_a_new_process(tmp_path):
    with small_disk(tmp_path / "disk", "24k") as disk:
        done = subprocess.run([sys.executable, "-m", "dcgan", "train", *map(str, tiny_run_flags(tmp_path, "r")),
                               "--epochs", "5", "--device", "cpu", "--tensorboard", "--logdir", str(disk)],
                              capture_output=True, text=True)
        *_, error = done.stderr.splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr and "Exception in thread" not in done.stderr
        assert error.startswith(f"error: cannot write TensorBoard's log in {disk / 'r'} (No space left on device)")
        assert_whole_records(disk / "r")
        assert load_checkpoint(tmp_path / "checkpoints" / "r" / "last.pt")["epoch"] >= 1


def test_an_event_file_is_cut_back_to_its_last_whole_record(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "log"))
    for step in range(5):
        writer.add_scalar("x", step, step)
    writer.close()
    (path,) = (tmp_path / "log").iterdir()
    whole = path.read_bytes()
    records = list(RawEventFileLoader(str(path)).Load())
    for cut in (1, 11, 12, 13, len(records[-1]) + 15):  # inside the header, at its end, in the data, in the CRC
        path.write_bytes(whole + whole[-(len(records[-1]) + 16):][:cut])
        cut_to_whole_records(path)
        assert path.read_bytes() == whole
    path.write_bytes(whole[:7])  # not even one record: the file goes
    cut_to_whole_records(path)
    assert not path.exists()


def test_a_link_or_a_folder_is_never_cut(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"\x05" * 40)
    link = tmp_path / "events.out.tfevents.1"
    link.symlink_to(target)
    cut_to_whole_records(link)
    (tmp_path / "events.out.tfevents.2").mkdir()
    cut_to_whole_records(tmp_path / "events.out.tfevents.2")
    assert target.read_bytes() == b"\x05" * 40 and link.is_symlink() and (tmp_path / "events.out.tfevents.2").is_dir()


def failing_thread(error: BaseException, module: str) -> threading.Thread:
    """A thread whose run raises `error` from code of `module`."""
    code = compile("def run():\n    raise error\n", module, "exec")
    namespace = {"__name__": module, "error": error}
    exec(code, namespace)
    return threading.Thread(target=namespace["run"])


def test_only_tensorboard_writer_threads_lose_their_traceback(monkeypatch, capfd):
    shown = []
    monkeypatch.setattr(threading, "excepthook", lambda args: shown.append(args.exc_value))
    quiet_writer_threads()
    quiet_writer_threads()  # once per process
    assert isinstance(threading.excepthook, QuietWriterThreads)
    assert not isinstance(threading.excepthook.previous, QuietWriterThreads)
    full = OSError(errno.ENOSPC, "No space left on device")
    other = [OSError(errno.ENOSPC, "elsewhere"), ValueError("a bug in the writer")]
    cases = [(full, "tensorboard.summary.writer.event_file_writer"), (other[0], "dcgan.training.loop"),
             (other[1], "tensorboard.summary.writer.event_file_writer")]
    for error, module in cases:
        thread = failing_thread(error, module)
        thread.start()
        thread.join()
    assert shown == other


def test_in_a_notebook_the_line_speaks_of_its_parameters(small_config, monkeypatch):
    from dcgan import train
    from dcgan.files import WriteError
    from dcgan.pictures.messages import in_parameter_words
    from tests.helpers import quiet

    train(small_config(epochs=1, tensorboard=True), log=quiet)
    monkeypatch.setattr(gfile, "io", types.SimpleNamespace(open=SmallDisk(0).open))
    with pytest.raises(WriteError) as failed:
        train(small_config(epochs=2, tensorboard=True, resume=True), log=quiet)
    assert in_parameter_words(str(failed.value)).endswith(
        "free some disk space, or leave TensorBoard out with tensorboard = False; then continue the run with "
        f"resume = True (from {small_config().checkpoints_dir}/test/last.pt, step 4)")
