"""One process trains a run at a time, and a run owns every folder it writes: a lock file in each (checkpoints/<run>/
and samples/<run>/), so that two runs of the same name with one of the two folders in common never both train.

The lock is an exclusive `flock` on <folder>/train.lock, taken without waiting; the file records the
owner's PID, host and start time. The kernel drops a flock when its process ends, however it ends (SIGKILL and
power loss included): a lock file that nobody holds was left by a process that died, and the next run takes it
over with a note. A second process finds the flock held and stops with one line naming the owner and the folder.
A lock whose record cannot be written (a full disk) is removed again, and the run stops in one line. Under torchrun
rank 0 holds the lock for every rank. Readers (sample, evaluate, nearest) take no lock: every file is replaced
atomically, so they never see a half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import time
from pathlib import Path

from .errors import UserError, first_line
from .files import WriteError, make_folder, parse_json, what_to_do
from .paths import LOCK_FILE

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None



class RunLock:
    """The lock of the run whose checkpoints live in `folder`; a context manager, or acquire() / release()."""

    def __init__(self, folder: Path, run: str):
        self.path = Path(folder) / LOCK_FILE
        self.run = run
        self.fd: int | None = None
        self.made_folder = False  # whether acquire made the folder (release removes it when it stayed empty)

    def acquire(self) -> str:
        """Take the lock; return a note when it was taken over from a process that died ("" otherwise).
        A UserError naming the owner when another process holds it."""
        self.made_folder = not self.path.parent.exists()
        make_folder(self.path.parent)
        if fcntl is None:
            return ""
        while self.fd is None:
            fd = self.open_lock_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = read_record(fd)
                os.close(fd)
                raise UserError(f"run '{self.run}' is being trained by process {owner.get('pid', '?')}"
                                f"{describe_owner(owner)}, which writes into {self.path.parent}: wait for it to end "
                                "or stop it, or choose another --run name or folder (two processes would mix their "
                                "files)") from None
            if not names_same_file(self.path, fd):  # the owner removed it while we waited: take the new one
                os.close(fd)
                continue
            self.fd = fd
        previous = read_record(self.fd)
        try:
            write_record(self.fd)
        except OSError as error:  # a full disk, say: nothing of the lock is left behind
            self.release()
            raise WriteError(f"cannot write the run's lock {self.path} ({error.strerror or first_line(error)}): "
                             f"{what_to_do(error, self.path)}, then run again") from None
        if previous.get("pid") and (previous.get("pid"), previous.get("host")) != (os.getpid(), socket.gethostname()):
            return (f"note: run '{self.run}' was locked by process {previous['pid']}{describe_owner(previous)}, "
                    "which ended without releasing it; taking the lock over")
        return ""

    def open_lock_file(self) -> int:
        """The lock file, opened for writing without following a link; a UserError when it is a link, a folder or
        anything but a regular file (nothing is written through it), a WriteError when it cannot be written."""
        fd = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK, 0o666)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.EISDIR) and not self.path.is_symlink():
                raise WriteError(f"cannot write the run's lock {self.path} ({error.strerror or first_line(error)}): "
                                 f"{what_to_do(error, self.path)}") from None
        if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        if fd is not None:
            os.close(fd)
        kind = "a link" if self.path.is_symlink() else "a folder" if self.path.is_dir() else "a special file"
        raise UserError(f"{self.path} is {kind}, not the run's lock file: move it away (dcgan writes nothing "
                        "through it)")

    def release(self) -> None:
        """Remove the lock file, then drop the flock (in that order, so no one takes a file about to vanish)."""
        if self.fd is None:
            return
        try:
            if names_same_file(self.path, self.fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None
        if self.made_folder:
            with contextlib.suppress(OSError):  # kept when anything was written into it
                self.path.parent.rmdir()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def names_same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def read_record(fd: int) -> dict:
    """The owner recorded in an open lock file ({} when empty or unreadable)."""
    try:
        record = parse_json(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):  # (UnreadableFile and UnicodeDecodeError among them)
        return {}
    return record if isinstance(record, dict) else {}


def write_record(fd: int) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    data = json.dumps(record).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def describe_owner(record: dict) -> str:
    host = f" on {record['host']}" if record.get("host") and record["host"] != socket.gethostname() else ""
    since = f" since {record['started']}" if record.get("started") else ""
    return f"{host}{since}"
