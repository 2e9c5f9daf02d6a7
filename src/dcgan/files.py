"""Atomic file writes: a crash or a kill mid-write never leaves a half-written file in place; PNG encoding."""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from .errors import UserError, first_line

TEMPORARY_SUFFIX = ".tmp"  # .<name>.<random>.tmp: a write in progress, or one a killed process left behind


class WriteError(UserError):
    """A file could not be written (disk full, read-only or missing folder); the previous file is intact."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush and fsync it, then rename it over `path`.

    A failure (disk full, read-only folder) raises WriteError and leaves the previous `path` as it was."""
    path = Path(path)
    try:
        write_then_rename(path, data)
    except OSError as error:
        raise WriteError(f"cannot write {path} ({error.strerror or first_line(error)}): the file there before is "
                         f"left intact; {what_to_do(error, path)}") from None


def atomic_link(source: Path, path: Path) -> bool:
    """Make `path` a hard link to `source`, atomically (a link made under a temporary name, renamed over `path`):
    the same bytes on disk once. False, with nothing changed, where the file system has no hard links."""
    path = Path(path)
    temporary = path.parent / f".{path.name}.{os.getpid()}.link{TEMPORARY_SUFFIX}"
    try:
        os.link(source, temporary)
    except OSError:
        return False
    try:
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return False
    sync_folder(path.parent)
    return True


def make_folder(folder: Path) -> None:
    """Create `folder` and its parents when missing; a WriteError saying what is wrong with the path."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"cannot create the folder {folder} ({error.strerror or first_line(error)}): "
                         f"{what_to_do(error, Path(folder) / 'x')}") from None


def what_to_do(error: OSError, path: Path) -> str:
    """Advice that fits why writing `path` failed."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {path.parent} writable, or write elsewhere"
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a part of {path.parent} is a file, not a folder: choose another folder"
    if error.errno == errno.EISDIR:
        return f"{path} is a folder: name a file instead"
    if error.errno == errno.ENAMETOOLONG:
        return "a name in the path is too long: choose a shorter one"
    return "check the path and the disk"


def write_then_rename(path: Path, data: bytes) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def png_bytes(image: Image.Image) -> bytes:
    """A PIL image encoded as PNG (lossless), for writing or inline display."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def remove_leftover_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that processes killed mid-write left in `folder`; return them."""
    leftovers = sorted(Path(folder).glob(f".*{TEMPORARY_SUFFIX}")) if Path(folder).is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def sync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def process_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this machine (a signal-0 probe; one we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True
