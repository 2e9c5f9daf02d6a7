"""TensorBoard's event files after a write failed (a full disk, a folder made read-only): cut back to whole records,
and no traceback from the writer's thread (the writer raises the same error again where it is next called)."""

from __future__ import annotations

import os
import stat
import struct
import threading
from pathlib import Path
from types import TracebackType

EVENT_FILE_PREFIX = "events.out.tfevents."
RECORD_HEADER = struct.Struct("<QI")  # a record: data length (uint64), its masked CRC (uint32), data, data CRC
DATA_CRC_BYTES = 4
WRITER_MODULES = "tensorboard.summary.writer"  # where TensorBoard's writer thread runs


def event_files(folder: Path) -> set[Path]:
    """The event files in `folder` (none when it does not exist yet)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    return {Path(folder) / name for name in names if name.startswith(EVENT_FILE_PREFIX)}


def cut_to_whole_records(path: Path) -> None:
    """Cut an event file back to the end of its last whole record (a write that failed can leave the start of
    one); a file without a whole record is removed. Links and anything but a regular file are left alone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return
    with os.fdopen(fd, "r+b") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        end = whole_records_end(handle, info.st_size)
        if end == 0:
            os.unlink(path)
        elif end < info.st_size:
            handle.truncate(end)
            os.fsync(fd)


def whole_records_end(handle, size: int) -> int:
    """The offset just past the last record that is whole in a file of `size` bytes."""
    offset = 0
    while offset + RECORD_HEADER.size <= size:
        handle.seek(offset)
        length, _ = RECORD_HEADER.unpack(handle.read(RECORD_HEADER.size))
        end = offset + RECORD_HEADER.size + length + DATA_CRC_BYTES
        if end > size:
            break
        offset = end
    return offset


class QuietWriterThreads:
    """threading.excepthook that leaves out the traceback of an OSError ending one of TensorBoard's writer threads:
    the writer raises that error again in the thread that calls it next, and the run tells it in one line. Every
    other thread's error goes to the hook this one replaced."""

    def __init__(self, previous):
        self.previous = previous

    def __call__(self, args: threading.ExceptHookArgs) -> None:
        if not (isinstance(args.exc_value, OSError) and raised_in(args.exc_traceback, WRITER_MODULES)):
            self.previous(args)


def quiet_writer_threads() -> None:
    """Install QuietWriterThreads, once per process (its thread may fail after the run has ended, so it stays)."""
    if not isinstance(threading.excepthook, QuietWriterThreads):
        threading.excepthook = QuietWriterThreads(threading.excepthook)


def raised_in(traceback: TracebackType | None, modules: str) -> bool:
    """Whether a frame of the traceback runs code of a module whose name starts with `modules`."""
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").startswith(modules):
            return True
        traceback = traceback.tb_next
    return False
