"""Atomic file writes: a crash or a kill mid-write never leaves a half-written file in place; PNG encoding; the
package's own files (JSON, PNG) read back whole and checked: regular, bounded, never through a link."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .errors import UserError, first_line

TEMPORARY_SUFFIX = ".tmp"  # .<name>.<random>.tmp: a write in progress, or one a killed process left behind
MAX_JSON_DEPTH = 32  # nesting of any JSON file read (dcgan's own nest at most 3 deep)
MAX_PNG_BYTES = 64 << 20  # a grid or figure this package writes is a few MB at most
STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class UnreadableFile(ValueError):
    """A file to read that is not what it should be; the message says why, as a phrase ("it is a link")."""


class WriteError(UserError):
    """A file could not be written (disk full, read-only or missing folder); the previous file is intact."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush and fsync it, then rename it over `path`.

    A failure (disk full, read-only folder) raises WriteError and leaves the previous `path` as it was."""
    path = Path(path)
    try:
        write_then_rename(path, data)
    except OSError as error:
        kept = "the file there before is left intact" if os.path.lexists(path) else "no part of it is left"
        raise WriteError(f"cannot write {path} ({error.strerror or first_line(error)}): {kept}; "
                         f"{what_to_do(error, path)}") from None


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
        make_folders(Path(folder))
    except OSError as error:
        raise WriteError(f"cannot create the folder {folder} ({error.strerror or first_line(error)}): "
                         f"{what_to_do(error, Path(folder) / 'x')}") from None


def make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents one level at a time from the top, without recursion (Path.mkdir's
    parents=True recurses once per level: a tree 1,100 folders deep would exhaust the stack); OSError as mkdir."""
    missing = []
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        level.mkdir(exist_ok=True)


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
    make_folders(path.parent)
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


@contextlib.contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A new, empty folder beside `target` (.<name>.<pid>.new.tmp) to write a whole folder into before
    replace_folder puts it in place; whatever is left of it is removed on the way out."""
    staging = Path(target).parent / f".{Path(target).name}.{os.getpid()}.new{TEMPORARY_SUFFIX}"
    make_folder(staging.parent)
    remove_folder_of_ours(staging)  # one a killed process of the same PID left
    make_folder(staging)
    try:
        yield staging
    finally:
        remove_folder_of_ours(staging)


def replace_folder(new: Path, target: Path, names: tuple[str, ...]) -> None:
    """Put the folder `new` in the place of `target`, which is missing, empty, or holds only files named `names`
    (checked by the caller): `target` is moved aside, `new` moved in, then the old files deleted by those names.
    A failure leaves `target` as it was; a reader sees the old folder or the new one, never a mix."""
    target = Path(target)
    old = target.parent / f".{target.name}.{os.getpid()}.old{TEMPORARY_SUFFIX}"
    try:
        if target.exists():
            os.rename(target, old)
            try:
                os.rename(new, target)
            except OSError:
                os.rename(old, target)
                raise
            for name in names:
                (old / name).unlink(missing_ok=True)
            old.rmdir()
        else:
            os.rename(new, target)
    except OSError as error:
        raise WriteError(f"cannot put the new {target} in place ({error.strerror or first_line(error)}): the folder "
                         f"there before is left as it was; {what_to_do(error, target / 'x')}") from None
    sync_folder(target.parent)


def remove_folder_of_ours(folder: Path) -> None:
    """Delete a folder this process made and filled (its plain files, then itself); links are removed, never
    followed."""
    if not os.path.lexists(folder) or not stat.S_ISDIR(os.lstat(folder).st_mode):
        return
    for name in os.listdir(folder):
        os.unlink(Path(folder) / name)
    os.rmdir(folder)


def open_regular(path: Path) -> io.BufferedReader:
    """A regular file opened for binary reading, without following a link (and without waiting on a FIFO);
    UnreadableFile otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnreadableFile("it is a link (dcgan reads the file itself, never through a link)") from None
        raise UnreadableFile(f"it cannot be read ({error.strerror or first_line(error)})") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise UnreadableFile("it is not a regular file")
    return handle


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (open_regular); UnreadableFile otherwise."""
    with open_regular(path) as handle:
        info = os.fstat(handle.fileno())
        try:
            data = handle.read(max_bytes + 1) if info.st_size <= max_bytes else b""
        except OSError as error:
            raise UnreadableFile(f"it cannot be read ({error.strerror or first_line(error)})") from None
    if info.st_size > max_bytes or len(data) > max_bytes:
        raise UnreadableFile(f"it is {max(info.st_size, len(data)):,} bytes, more than the {max_bytes:,} it may be")
    return data


def read_json(path: Path, max_bytes: int) -> Any:
    """A JSON file read whole and checked before parsing: a regular file (read_regular), UTF-8, nested at most
    MAX_JSON_DEPTH levels; UnreadableFile otherwise."""
    try:
        text = read_regular(path, max_bytes).decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile("it is not UTF-8 text") from None
    return parse_json(text)


def read_png(path: Path, max_bytes: int = MAX_PNG_BYTES) -> Image.Image:
    """A picture this package wrote (a grid, a figure) read back whole and decoded: a regular file (read_regular),
    an image Pillow decodes completely within its pixel limit; UnreadableFile otherwise."""
    data = read_regular(path, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except UnidentifiedImageError:
        raise UnreadableFile("not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableFile("too many pixels (decompression bomb)") from None
    except (OSError, ValueError, SyntaxError):
        raise UnreadableFile("corrupt or cut off") from None
    return image


def parse_json(text: str) -> Any:
    """JSON text, refused (UnreadableFile) before parsing when it nests deeper than MAX_JSON_DEPTH levels."""
    depth = deepest = 0
    for match in STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise UnreadableFile(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as error:
        raise UnreadableFile(f"it is not JSON ({first_line(error)[:80]})") from None
