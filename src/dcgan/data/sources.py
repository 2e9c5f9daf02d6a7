"""Where images come from: `--data` names a dataset or a folder; each source yields decoded arrays.

A source knows how to find its files, a cache key that changes when they change, its natural channel
count, and how to turn each image into a (channels, size, size) uint8 array.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError, first_line
from ..paths import repo_root
from .decode import IMAGE_EXTENSIONS, decoded_stream, default_workers, image_mode, printable
from .synthetic import SHAPES, shape_images
from .transforms import GRAY_MODES, image_to_array

DATASET_NAMES = ("fashion-mnist", "mnist", "celeba", "anime", "synthetic")
SYNTHETIC_COUNT = 2048


def short_hash(text: str) -> str:
    """Ten hex digits of the SHA-1 of `text` as the file system spells it (names that are not UTF-8 included)."""
    return hashlib.sha1(os.fsencode(text)).hexdigest()[:10]


class IdxSource:
    """Fashion-MNIST or MNIST from the original IDX files (gzipped or not)."""

    def __init__(self, title: str, images_file: Path, labels_file: Path, classes: tuple[str, ...] = ()):
        self.description, self.classes = title, classes
        self.images_file, self.labels_file = images_file, labels_file
        stat = images_file.stat()
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        self.cache_stem = f"{slug}-{short_hash(f'{images_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}')}"
        self._labels: np.ndarray | None = None

    def native_channels(self) -> int:
        return 1

    def count(self) -> int:
        return int(read_idx(self.labels_file).shape[0])

    def arrays(self, size: int, channels: int) -> Iterator[tuple[np.ndarray | None, str | None]]:
        images = read_idx(self.images_file)
        for pixels in images:
            yield image_to_array(Image.fromarray(pixels, "L"), size, channels), None

    def labels(self) -> np.ndarray:
        return read_idx(self.labels_file).astype(np.int64)


class SyntheticSource:
    """Coloured circles, squares and triangles, drawn on demand (labels: the shape)."""

    description = "synthetic shapes"
    cache_stem = f"synthetic-{SYNTHETIC_COUNT}"
    classes = SHAPES

    def native_channels(self) -> int:
        return 3

    def count(self) -> int:
        return SYNTHETIC_COUNT

    def arrays(self, size: int, channels: int) -> Iterator[tuple[np.ndarray | None, str | None]]:
        for image, _ in shape_images(SYNTHETIC_COUNT, size):
            yield image_to_array(image, size, channels), None

    def labels(self) -> np.ndarray:
        return np.array([label for _, label in shape_images(SYNTHETIC_COUNT, 8)], dtype=np.int64)


class FolderSource:
    """Every .jpg/.jpeg/.png/.webp/.bmp file below a folder (hidden folders and symlinked folders skipped)."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.description, self.classes = printable(self.root), ()
        self.files = list_image_files(self.root)
        if not self.files:
            raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {self.description}: "
                            "point --data at the folder that holds them")
        listing = "\n".join(f"{path}\t{file_signature(path)}" for path in self.files)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.root.name).strip("-").lower() or "folder"
        self.cache_stem = f"{slug}-{short_hash(str(self.root) + chr(10) + listing)}"

    def native_channels(self) -> int:
        """1 when every sampled image is grayscale, else 3."""
        step = max(1, len(self.files) // 32)
        modes = (image_mode(str(path)) for path in self.files[::step])  # None: skipped, counted when decoding
        return 3 if any(mode is not None and mode not in GRAY_MODES for mode in modes) else 1

    def count(self) -> int:
        return len(self.files)

    def arrays(self, size: int, channels: int) -> Iterator[tuple[np.ndarray | None, str | None]]:
        return decoded_stream([str(path) for path in self.files], size, channels, default_workers())

    def labels(self) -> None:
        return None


def list_image_files(root: Path) -> list[Path]:
    """Every file below `root` with an image extension, sorted. Symlinked folders are not entered (no loops, no
    duplicates); dangling or looping symlinks and FIFOs are listed, and skipped with a reason when decoding."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found += [Path(folder) / name for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def file_signature(path: Path) -> str:
    """Size and modification time, for the cache key ("unreadable" for dangling or looping symlinks)."""
    try:
        stat = path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        return "unreadable"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the MNIST format), gzipped or not."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise UserError(f"cannot read {printable(path)} ({error}): delete it so it is fetched again") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise UserError(f"{printable(path)} is not an IDX file of unsigned bytes: replace it with the original file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(dims)):
        raise UserError(f"{printable(path)} is truncated ({values.size} of {int(np.prod(dims))} values): replace it")
    return values.reshape(dims)


LABELLED = {  # name -> (title, torchvision class and folder, Debian package folder)
    "fashion-mnist": ("Fashion-MNIST", "FashionMNIST", Path("/usr/share/datasets/fashion-mnist")),
    "mnist": ("MNIST", "MNIST", Path("/usr/share/datasets/mnist")),
}
CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "mnist": tuple(str(digit) for digit in range(10)),
}


def find_idx_files(folders: list[Path], split: str) -> tuple[Path, Path] | None:
    prefix = "train" if split == "train" else "t10k"
    for folder in folders:
        for suffix in ("", ".gz"):
            images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def labelled_source(name: str, data_dir: Path, download: bool, split: str) -> IdxSource:
    title, tv_name, debian_folder = LABELLED[name]
    folders = [data_dir / tv_name / "raw", data_dir / name, debian_folder]
    found = find_idx_files(folders, split)
    if found is None and download:
        import torchvision.datasets

        try:
            getattr(torchvision.datasets, tv_name)(root=str(data_dir), train=split == "train", download=True)
        except Exception as error:  # no network, mirror down, disk full: all end in the message below
            print(f"could not download {title}: {first_line(error)}")
        found = find_idx_files(folders, split)
    if found is None:
        debian = f"`apt-get install dataset-{name}` (Debian/Ubuntu) or " if name == "fashion-mnist" else ""
        first, second, third = (printable(folder) for folder in folders)
        raise UserError(f"{title} not found in {first}, {second} or {third} and not downloadable: "
                        f"{debian}copy the four *-idx?-ubyte.gz files into {first}")
    return IdxSource(f"{title} ({split})", *found, CLASS_NAMES[name])


NAMED_FOLDERS = {  # name -> (folders to look in, in order; how to get the data)
    "celeba": (("celeba/img_align_celeba", "img_align_celeba", "celeba"),
               "download CelebA's img_align_celeba.zip (202,599 aligned faces) and unzip it into data/celeba/"),
    "anime": (("anime/images", "anime"),
              "download the Kaggle 'Anime Face Dataset' (63,632 faces) and put its images in data/anime/"),
}


def data_folder(data: str, data_dir: Path) -> Path | None:
    """The folder a `--data` value reads its images from, when it exists (None for synthetic data, a dataset not
    there yet or a missing path); nothing is listed or decoded, so a run can refuse folders before it starts."""
    if data in LABELLED:
        _, tv_name, debian_folder = LABELLED[data]
        found = find_idx_files([data_dir / tv_name / "raw", data_dir / data, debian_folder], "train")
        return found[0].parent if found else None
    if data in NAMED_FOLDERS:
        return next((data_dir / folder for folder in NAMED_FOLDERS[data][0] if (data_dir / folder).is_dir()), None)
    if data == "synthetic":
        return None
    return next((candidate for candidate in folder_candidates(data) if candidate.is_dir()), None)


def folder_candidates(data: str) -> list[Path]:
    """Where a folder named by `--data` may be: the path itself, or relative to the working directory or the repo."""
    path = Path(data).expanduser()
    return [path] if path.is_absolute() else [Path.cwd() / path, repo_root() / path]


def resolve_source(data: str, data_dir: Path, download: bool = True, split: str = "train"):
    """Turn a `--data` value into a source, or raise UserError saying what to do."""
    if data in LABELLED:
        return labelled_source(data, data_dir, download, split)
    if data == "synthetic":
        return SyntheticSource()
    if data in NAMED_FOLDERS:
        folders, how = NAMED_FOLDERS[data]
        for folder in folders:
            if (data_dir / folder).is_dir():
                return FolderSource(data_dir / folder)
        raise UserError(f"{data} not found in {printable(data_dir)}: {how}")
    for candidate in folder_candidates(data):
        if candidate.is_dir():
            return FolderSource(candidate)
        if candidate.exists():
            raise UserError(f"--data {printable(data)} is a file: give a folder of images (searched recursively) "
                            f"or one of {', '.join(DATASET_NAMES)}")
    if re.fullmatch(r"[A-Za-z0-9_-]+", data):
        raise UserError(f"unknown dataset '{data}': use one of {', '.join(DATASET_NAMES)} "
                        "or a path to a folder of images")
    raise UserError(f"image folder {printable(data)} not found: check the path (relative paths start from the "
                    "working directory or the repo)")
