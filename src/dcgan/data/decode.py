"""Decode image files in parallel into fixed-size uint8 arrays, skipping (and counting) the bad ones.

Images in any mode are converted (16-bit, CMYK, palette, alpha, grey, smaller than the target: see transforms).
A file is skipped for one of these reasons, counted in the summary line:
    empty file                            zero bytes
    not a regular file                    a FIFO, socket or device named like an image: never read, so never waited on
    unreadable                            cannot be opened or read: no permission, dangling symlink, symlink loop,
                                          I/O error
    not an image                          no image format recognises it (a text file named .jpg)
    corrupt or truncated                  recognised, but fails to decode (a cut-off download)
    too many pixels (decompression bomb)  declares more than Image.MAX_IMAGE_PIXELS pixels
    aspect ratio over 8:1                 one side over MAX_ASPECT times the other: a 1 x 300,000 strip is a few
                                          hundred bytes under the pixel limit, and its centre square shows little
Paths are str as os.walk gives them: a name that is not valid UTF-8 (a Latin-1 `café.png`) holds surrogate
escapes, which os.fsencode turns back into the bytes on disk and `printable` into a name safe to print.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .transforms import image_to_array

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PARALLEL_FROM = 256  # below this many files, decoding in-process beats starting workers
MAX_ASPECT = 8  # long side / short side beyond which an image is skipped
TOO_ELONGATED = f"aspect ratio over {MAX_ASPECT}:1"


class NotRegularFile(OSError):
    """A FIFO, socket, device or folder where an image file was expected."""


def open_regular(path: str) -> BinaryIO:
    """Open a regular file for reading; anything else raises NotRegularFile (O_NONBLOCK: a FIFO never waits)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


@contextmanager
def strict_pillow():
    """Pillow refusing truncated files and images over MAX_IMAGE_PIXELS (not just warning), whatever the caller set:
    notebooks often set LOAD_TRUNCATED_IMAGES, which fills the missing part of a cut-off file with grey."""
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated


def read_image(path: str, draft_size: int = 0) -> tuple[Image.Image | None, str | None]:
    """Open and decode one image file: (image, None), or (None, why it was skipped: see the module docstring)."""
    try:
        with open_regular(path) as handle, strict_pillow():
            if os.fstat(handle.fileno()).st_size == 0:
                return None, "empty file"
            with Image.open(handle) as image:
                if too_elongated(*image.size):  # read from the header: nothing decoded yet
                    return None, TOO_ELONGATED
                if draft_size:
                    image.draft(image.mode, (draft_size, draft_size))  # JPEG: decode at the smallest scale >= it
                image.load()
                return image, None
    except NotRegularFile:
        return None, "not a regular file"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "too many pixels (decompression bomb)"
    except UnidentifiedImageError:
        return None, "not an image"
    except OSError as error:  # with an errno from the system (ENOENT, ELOOP, EACCES, EIO), else from Pillow
        return None, "unreadable" if error.errno is not None else "corrupt or truncated"
    except (SyntaxError, ValueError, EOFError):
        return None, "corrupt or truncated"


def too_elongated(width: int, height: int) -> bool:
    """Whether one side is more than MAX_ASPECT times the other (a side of 0 counts as endlessly elongated)."""
    return max(width, height) > MAX_ASPECT * min(width, height)


def printable(path) -> str:
    """A path as text that prints and encodes as UTF-8 anywhere: bytes that are not UTF-8 appear as \\xe9."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def image_mode(path: str) -> str | None:
    """The mode an image file declares in its header (nothing decoded), or None when it cannot be opened or is
    too elongated (skipped when decoding, so no say in the folder's channels)."""
    try:
        with open_regular(path) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # counted when decoding
            with Image.open(handle) as image:
                return None if too_elongated(*image.size) else image.mode
    except Exception:
        return None


def decode_file(path: str, size: int, channels: int) -> tuple[np.ndarray | None, str | None]:
    """One file -> ((channels, size, size) uint8 array, None), or (None, why it was skipped)."""
    image, reason = read_image(path, draft_size=size)
    if image is None:
        return None, reason
    try:
        return image_to_array(image, size, channels), None
    except (OSError, ValueError):
        return None, "corrupt or truncated"


def parallel_map(job, items: list, workers: int, chunksize: int = 64) -> Iterator:
    """job(item) for each item, in order, computed by `workers` processes when there are enough items to pay. A
    stop (SIGINT, SIGTERM) while the workers start is held until the pool is up, then acted on as usual inside it,
    so the pool is shut down whole: no worker is left half-started to fail on its closed pipe."""
    if workers <= 1 or len(items) < PARALLEL_FROM:
        yield from map(job, items)
        return
    # spawn: safe next to torch's threads, and works from notebooks since the jobs are importable functions
    held = HeldStops()
    try:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=quiet_worker)
    except BaseException:
        held.release()
        raise
    with pool:
        held.release()
        yield from pool.imap(job, items, chunksize=chunksize)


def quiet_worker() -> None:
    """A worker leaves Ctrl-C to its parent, which stops the pool (a terminal sends SIGINT to every process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class HeldStops:
    """From creation to release(), SIGINT and SIGTERM are noted instead of handled; release() hands the first one
    to the handler in place before (in the main thread; elsewhere signals are not ours to hold)."""

    def __init__(self):
        self.held: list[int] = []
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self.hold) for number in (signal.SIGINT, signal.SIGTERM)}

    def hold(self, number: int, frame) -> None:
        self.held.append(number)

    def release(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
        if self.held:
            signal.raise_signal(self.held[0])


def decoded_stream(paths: list[str], size: int, channels: int, workers: int) -> Iterator[tuple]:
    """(array or None, reason) for each path, in order, decoded by `workers` processes when it pays."""
    return parallel_map(partial(decode_file, size=size, channels=channels), paths, workers)


def write_decoded(results: Iterable[tuple], out: BinaryIO) -> tuple[int, Counter]:
    """Append every decoded array's bytes to `out`; return (images written, skip reasons counted)."""
    written, skipped = 0, Counter()
    for array, reason in results:
        if array is None:
            skipped[reason] += 1
        else:
            out.write(np.ascontiguousarray(array).tobytes())
            written += 1
    return written, skipped


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
