"""Decode image files in parallel into fixed-size uint8 arrays, skipping (and counting) the bad ones."""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .transforms import image_to_array

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PARALLEL_FROM = 256  # below this many files, decoding in-process beats starting workers


def read_image(path: str, draft_size: int = 0) -> tuple[Image.Image | None, str | None]:
    """Open and decode one image file: (image, None), or (None, why it was skipped)."""
    try:
        if os.path.getsize(path) == 0:
            return None, "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if draft_size:
                    image.draft(image.mode, (draft_size, draft_size))  # JPEG: decode at the smallest scale >= it
                image.load()
                return image, None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "too many pixels (decompression bomb)"
    except UnidentifiedImageError:
        return None, "not an image"
    except PermissionError:
        return None, "unreadable"
    except (OSError, SyntaxError, ValueError, EOFError):
        return None, "corrupt or truncated"


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
    """job(item) for each item, in order, computed by `workers` processes when there are enough items to pay."""
    if workers <= 1 or len(items) < PARALLEL_FROM:
        yield from map(job, items)
        return
    # spawn: safe next to torch's threads, and works from notebooks since the jobs are importable functions
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(job, items, chunksize=chunksize)


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
