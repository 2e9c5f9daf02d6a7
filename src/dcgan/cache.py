"""The decoded-image cache: each source is decoded once per (size, channels) into raw uint8 on disk.

Files in the cache folder (data/.cache/ by default), for a key like `fashion-mnist-train-<hash>-32px-1ch`:
    <key>.u8           images, (N, channels, size, size) uint8, row after row
    <key>.labels.npy   int64 labels, for labelled sources
    <key>.json         count, shape, source and skipped files; written last, so it marks a complete cache
Later runs memory-map the images instead of decoding again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .decode import write_decoded
from .errors import UserError, first_line
from .files import atomic_write_bytes, atomic_write_text
from .sources import resolve_source
from .transforms import to_signed


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

    def sample(self, count: int, seed: int = 0) -> torch.Tensor:
        """`count` different images drawn at random (repeatably for a seed), as floats in [-1, 1]."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:count]
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


def load_cached(cache_dir: Path, key: str) -> ImageData | None:
    """The cached data for `key`, or None when it is missing or does not match its description."""
    images_file, labels_file, meta_file = cache_paths(cache_dir, key)
    try:
        meta = json.loads(meta_file.read_text())
        shape = tuple(meta["shape"])
        if images_file.stat().st_size != int(np.prod(shape)):
            return None
        images = np.memmap(images_file, dtype=np.uint8, mode="r", shape=shape)
        labels = np.load(labels_file) if meta["labelled"] else None
        if labels is not None and labels.shape != (shape[0],):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ImageData(images, labels, meta["source"], images_file, meta["skipped"], meta["files_seen"],
                     tuple(meta.get("classes", ())))


def build_cache(source, size: int, channels: int, cache_dir: Path, key: str, progress: bool) -> ImageData:
    """Decode every image of `source` once into the cache, with a progress bar."""
    try:
        return write_cache(source, size, channels, cache_dir, key, progress)
    except OSError as error:  # read-only folder, disk full, ...
        raise UserError(f"cannot write the image cache in {cache_dir} ({first_line(error)}): free some space or "
                        "pass --data-dir a writable folder") from None


def write_cache(source, size: int, channels: int, cache_dir: Path, key: str, progress: bool) -> ImageData:
    images_file, labels_file, meta_file = cache_paths(cache_dir, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_file.unlink(missing_ok=True)  # the cache is incomplete until the description is written again
    total = source.count()
    partial_file = images_file.with_suffix(f".u8.{os.getpid()}.partial")
    try:
        with open(partial_file, "wb") as out:
            stream = tqdm(source.arrays(size, channels), total=total, disable=not progress,
                          desc=f"decoding {source.description} to {size}x{size}", unit="img")
            written, skipped = write_decoded(stream, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial_file, images_file)
    finally:
        partial_file.unlink(missing_ok=True)
    if written == 0:
        reasons = ", ".join(f"{count} {why}" for why, count in skipped.most_common())
        raise UserError(f"none of the {total:,} image files in {source.description} could be decoded "
                        f"({reasons}): check the folder's contents")
    labels = source.labels()
    if labels is not None:
        atomic_write_bytes(labels_file, npy_bytes(labels))
    meta = {"source": source.description, "shape": [written, channels, size, size], "labelled": labels is not None,
            "skipped": dict(skipped), "files_seen": total, "classes": list(source.classes)}
    atomic_write_text(meta_file, json.dumps(meta, indent=1))
    return load_cached(cache_dir, key)


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
    cache_dir = data_dir / ".cache"
    return load_cached(cache_dir, key) or build_cache(source, image_size, channels, cache_dir, key, progress)
