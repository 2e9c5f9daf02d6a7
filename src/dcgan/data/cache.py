"""The decoded-image cache: each source is decoded once per (size, channels) into raw uint8 on disk.

Files in the cache folder (data/.cache/ by default), for a key like `fashion-mnist-train-<hash>-32px-1ch`:
    <key>.u8           images, (N, channels, size, size) uint8, row after row
    <key>.labels.npy   int64 labels, for labelled sources
    <key>.json         count, shape, source, skipped files and the CRC-32 of the two files above; written last,
                       so it marks a complete cache
    <key>.u8.<host>.<pid>.partial
                       the images while a build runs; renamed to <key>.u8 when complete, deleted when the build
                       fails or is interrupted, and, left by a killed build, deleted by the next load on that host
                       once its process has ended
Later runs check the description whole against what they asked for (source, size, channels, every field's type),
read the files only when they are regular files of the sizes it implies, check the checksums, then memory-map the
images instead of decoding again; a cache that fails a check (a flipped byte, a garbled or altered description, a
file replaced by a link or a FIFO, one from before checksums) is rebuilt, with one line on stderr saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import socket
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import UserError, first_line
from ..files import (
    UnreadableFile,
    atomic_write_bytes,
    atomic_write_text,
    open_regular,
    process_alive,
    read_json,
    read_regular,
    what_to_do,
)
from ..paths import root_or_default
from ..progress import progress_bar
from .decode import printable, write_decoded
from .sources import resolve_source
from .transforms import to_signed

CACHE_FOLDER = ".cache"  # in the data folder (data/ by default)
MAX_META_BYTES = 1 << 24  # a cache's .json: its shape, checksums and the skipped files counted by reason
META_FIELDS = {"source", "shape", "labelled", "skipped", "files_seen", "classes", "crc32"}
MAX_NPY_HEADER_BYTES = 1 << 16  # the .npy header before the labels: about 128 bytes in practice


class StaleCache(ValueError):
    """A cache that is there but unfit to use (not what the run asked for, damaged); the message says why, as a
    phrase ("its labels file: it is not a regular file")."""


@dataclass
class ImageData:
    """A decoded dataset: images (N, C, S, S) uint8 (memory-mapped), optional labels, what was skipped."""

    images: np.ndarray
    labels: np.ndarray | None
    source: str
    cache_file: Path
    skipped: dict[str, int] = field(default_factory=dict)
    files_seen: int = 0
    classes: tuple[str, ...] = ()  # label names of labelled sources

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[2])

    def summary(self) -> str:
        """One line: what was loaded, and what was skipped and why."""
        line = (f"{self.source}: {len(self):,} images at {self.image_size}x{self.image_size}, "
                f"{self.channels} channel{'s' if self.channels > 1 else ''}")
        if self.skipped:
            reasons = ", ".join(f"{count:,} {why}" for why, count in sorted(self.skipped.items()))
            line += f"; skipped {sum(self.skipped.values()):,} of {self.files_seen:,} files: {reasons}"
        return line

    def sample(self, count: int, seed: int = 0, skip: int = 0) -> torch.Tensor:
        """`count` different images drawn at random (repeatably for a seed), as floats in [-1, 1]; `skip`: after
        the first `skip` of the same random order (none of them again)."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[skip:skip + count]
        return to_signed(torch.from_numpy(self.images[np.sort(order.numpy())]))

    def head(self, count: int) -> ImageData:
        """The first `count` images (all when count is 0)."""
        if not count or count >= len(self):
            return self
        labels = None if self.labels is None else self.labels[:count]
        return dataclasses.replace(self, images=self.images[:count], labels=labels)

    def label_counts(self) -> dict[str, int]:
        """Images per class, by class name (empty for unlabelled data)."""
        if self.labels is None:
            return {}
        counts = np.bincount(self.labels, minlength=len(self.classes))
        names = self.classes or tuple(str(i) for i in range(len(counts)))
        return {name: int(count) for name, count in zip(names, counts)}


def cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path, Path]:
    return cache_dir / f"{key}.u8", cache_dir / f"{key}.labels.npy", cache_dir / f"{key}.json"


# CRC-32: the cache needs to catch damage (flipped bits, torn or overwritten blocks), not forgery, and CRC-32 catches
# every burst of up to 32 bits and all but 1 in 4 billion other changes. On 200 MB (2-core AMD EPYC, zlib 1.2.13) it
# ran at 3-4 GB/s (two runs), against 1.9 for sha1, 0.9 for blake2b and 0.75 for md5.
def crc32_of_file(path: Path, chunk_size: int = 1 << 24) -> int:
    """The CRC-32 of a regular file (open_regular), read in 16 MiB chunks (a cache of gigabytes is never held in
    memory)."""
    crc = 0
    with open_regular(path) as handle:
        while chunk := handle.read(chunk_size):
            crc = zlib.crc32(chunk, crc)
    return crc


class CrcWriter:
    """Writes through to a binary file, keeping the CRC-32 of the bytes written so far."""

    def __init__(self, out):
        self.out, self.crc = out, 0

    def write(self, data) -> int:
        self.crc = zlib.crc32(data, self.crc)
        return self.out.write(data)


def load_cached(cache_dir: Path, key: str, source, size: int, channels: int, verify: bool = True
                ) -> ImageData | None:
    """The cached data for `key`, None when there is none; StaleCache when one is there but its description is not
    what the run asked for (check_meta), or its files are not regular files of the sizes and (verify) checksums it
    gives."""
    images_file, labels_file, meta_file = cache_paths(cache_dir, key)
    if not os.path.lexists(meta_file):
        return None
    with unreadable_as_stale("description"):
        meta = read_json(meta_file, MAX_META_BYTES)
    check_meta(meta, source, size, channels)
    crc = meta["crc32"] if verify else {}
    images = read_images(images_file, tuple(meta["shape"]), crc.get("images"))
    labels = None
    if meta["labelled"]:
        labels = read_labels(labels_file, meta["shape"][0], len(meta["classes"]), crc.get("labels"))
    return ImageData(images, labels, meta["source"], images_file, dict(meta["skipped"]), meta["files_seen"],
                     tuple(meta["classes"]))


def check_meta(meta, source, size: int, channels: int) -> None:
    """Check a cache's description whole: its fields, their types, and the source, size and channels against what
    the run asked for; StaleCache says what does not fit."""
    if not isinstance(meta, dict) or set(meta) != META_FIELDS:
        raise StaleCache(f"its description does not have exactly the fields {', '.join(sorted(META_FIELDS))}")
    shape, skipped, labelled, crc = meta["shape"], meta["skipped"], meta["labelled"], meta["crc32"]
    if not (isinstance(shape, list) and len(shape) == 4 and all(map(is_count, shape)) and shape[0] > 0):
        raise StaleCache("its shape is not four counts")
    if shape[1:] != [channels, size, size]:
        raise StaleCache(f"it describes {shape[1]}-channel {shape[2]}x{shape[3]} images, "
                         f"not the {channels}-channel {size}x{size} ones asked for")
    if meta["source"] != source.description or meta["classes"] != list(source.classes):
        raise StaleCache(f"it describes another source than {source.description} or other class names")
    if not (isinstance(skipped, dict) and all(isinstance(why, str) and is_count(n) for why, n in skipped.items())):
        raise StaleCache("its skipped files are not counts by reason")
    if not is_count(meta["files_seen"]) or meta["files_seen"] != shape[0] + sum(skipped.values()):
        raise StaleCache("its count of files seen is not its images plus its skipped files")
    if not isinstance(labelled, bool):
        raise StaleCache("its `labelled` is not true or false")
    parts = {"images", "labels"} if labelled else {"images"}
    if not (isinstance(crc, dict) and set(crc) == parts and all(is_count(v) and v < 1 << 32 for v in crc.values())):
        raise StaleCache("its checksums are missing or malformed")


def is_count(value) -> bool:
    """Whether `value` is a non-negative int (a bool is not)."""
    return type(value) is int and value >= 0


@contextlib.contextmanager
def unreadable_as_stale(part: str):
    """Report a file of the cache that cannot be read (a link, a FIFO, too long, not JSON) as StaleCache."""
    try:
        yield
    except (UnreadableFile, OSError) as error:
        raise StaleCache(f"its {part} file: {first_line(error)}") from None


def read_images(path: Path, shape: tuple[int, ...], crc: int | None) -> np.memmap:
    """The images memory-mapped, once the file is a regular file of exactly the bytes `shape` takes, with checksum
    `crc` (when given), and still the same file when mapped."""
    with unreadable_as_stale("images"), open_regular(path) as handle:
        info = os.fstat(handle.fileno())
        if info.st_size != math.prod(shape):
            raise StaleCache(f"its images file is {info.st_size:,} bytes, not the {math.prod(shape):,} its shape takes")
        if crc is not None and crc32_of_file(path) != crc:
            raise StaleCache("its images file does not match its checksum")
        images = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)  # by name: data loader workers map it again
        if os.path.samestat(info, os.lstat(path)):
            return images
    raise StaleCache("its images file was replaced while it was read")


def read_labels(path: Path, count: int, class_count: int, crc: int | None) -> np.ndarray:
    """The labels: a regular .npy file holding exactly `count` int64 class indices, with checksum `crc` (when given)."""
    with unreadable_as_stale("labels"):
        raw = read_regular(path, MAX_NPY_HEADER_BYTES + 8 * count)
    if crc is not None and zlib.crc32(raw) != crc:
        raise StaleCache("its labels file does not match its checksum")
    buffer = io.BytesIO(raw)
    try:
        labels = np.load(buffer, allow_pickle=False)
    except (ValueError, EOFError, OSError):
        raise StaleCache("its labels file is not a .npy array") from None
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != (count,) \
            or buffer.tell() != len(raw):
        raise StaleCache(f"its labels file does not hold exactly {count:,} labels")
    if labels.min() < 0 or (class_count and labels.max() >= class_count):
        raise StaleCache("its labels are not class indices")
    return labels


def build_cache(source, size: int, channels: int, cache_dir: Path, key: str, progress: bool) -> ImageData:
    """Decode every image of `source` once into the cache, with a progress bar."""
    try:
        return write_cache(source, size, channels, cache_dir, key, progress)
    except OSError as error:  # read-only folder, disk full, ...
        raise UserError(f"cannot write the image cache in {printable(cache_dir)} ({error.strerror or first_line(error)}"
                        f"): {what_to_do(error, cache_dir / 'x')}, or pass --data-dir another folder") from None


def write_cache(source, size: int, channels: int, cache_dir: Path, key: str, progress: bool) -> ImageData:
    images_file, labels_file, meta_file = cache_paths(cache_dir, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)  # the cache is incomplete until the description is written again
    total = source.count()
    partial_file = images_file.with_suffix(f".u8.{host_tag()}.{os.getpid()}.partial")
    arrays = source.arrays(size, channels)
    try:
        with open(partial_file, "wb") as out:
            stream = progress_bar(arrays, total=total, disable=not progress,
                          desc=f"decoding {source.description} to {size}x{size}", unit="img")
            checksummed = CrcWriter(out)  # the checksum is taken on the way out: no second pass over the file
            written, skipped = write_decoded(stream, checksummed)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial_file, images_file)
    finally:  # also on KeyboardInterrupt, SystemExit and whatever a signal handler raises
        remove_quietly(partial_file)
        close_generator(arrays)  # stops decoding workers now, not when garbage collected
    if written == 0:
        reasons = ", ".join(f"{count} {why}" for why, count in skipped.most_common())
        raise UserError(f"none of the {total:,} image files in {source.description} could be decoded "
                        f"({reasons}): check the folder's contents")
    crc = {"images": checksummed.crc}
    labels = source.labels()
    if labels is not None:
        labels_bytes = npy_bytes(labels)
        atomic_write_bytes(labels_file, labels_bytes)
        crc["labels"] = zlib.crc32(labels_bytes)
    meta = {"source": source.description, "shape": [written, channels, size, size], "labelled": labels is not None,
            "skipped": dict(skipped), "files_seen": total, "classes": list(source.classes), "crc32": crc}
    atomic_write_text(meta_file, json.dumps(meta, indent=1))
    return load_cached(cache_dir, key, source, size, channels, verify=False)  # just checksummed: not read again


PARTIAL_NAME = re.compile(r"\.u8\.(?:(?P<host>[A-Za-z0-9-]+)\.)?(?P<pid>\d+)\.partial$")


def host_tag() -> str:
    """This machine's name as it appears in partial files: letters, digits and dashes."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()) or "host"


def remove_dead_partials(cache_dir: Path) -> list[Path]:
    """Delete the partial images files that builds killed on this machine left: those whose process has ended.

    Partials of a live process (a build running beside this one) and of other machines sharing the folder are
    kept; a name without a host counts as this machine's."""
    if not cache_dir.is_dir():
        return []
    removed = []
    for path in sorted(cache_dir.glob("*.partial")):
        match = PARTIAL_NAME.search(path.name)
        if match is None or match["host"] not in (None, host_tag()) or process_alive(int(match["pid"])):
            continue
        if remove_quietly(path):
            removed.append(path)
    return removed


def remove_quietly(path: Path) -> bool:
    """Delete `path` if it is there; whether it is gone now (a read-only folder keeps it)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def close_generator(iterator) -> None:
    """Close a generator (its `finally` blocks run: worker pools end); other iterators are left as they are."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_image_data(data: str, image_size: int, channels: int, data_dir: Path, download: bool = True,
                    split: str = "train", progress: bool = True) -> ImageData:
    """Resolve `data`, then load its decoded cache, building it first when missing or damaged.

    channels 0 follows the source: 1 for grayscale data, 3 otherwise.
    """
    source = resolve_source(data, data_dir, download, split)
    channels = channels or source.native_channels()
    key = f"{source.cache_stem}-{image_size}px-{channels}ch"
    cache_dir = data_dir / CACHE_FOLDER
    remove_dead_partials(cache_dir)
    try:
        cached = load_cached(cache_dir, key, source, image_size, channels)
    except StaleCache as problem:
        print(f"the image cache {printable(cache_paths(cache_dir, key)[2])} is unfit to use ({problem}): "
              f"decoding {source.description} again", file=sys.stderr, flush=True)
        cached = None
    return cached or build_cache(source, image_size, channels, cache_dir, key, progress)


def real_images_for(cfg: TrainConfig, count: int, seed: int = 0, data_dir: str = "", skip: int = 0) -> torch.Tensor:
    """`count` random real images of the dataset a run trained on, prepared as it was: floats in [-1, 1]; `skip`:
    after the first `skip` that the same seed draws (fewer where the dataset runs out)."""
    data = load_image_data(cfg.data, cfg.image_size, cfg.channels, root_or_default(data_dir or cfg.data_dir, "data"),
                           cfg.download, progress=False)
    return data.sample(min(count, len(data)), seed, skip)
