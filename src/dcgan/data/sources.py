"""Where images come from: `--data` names a dataset (data/datasets.py) or a folder; each source yields decoded
arrays.

A source knows how to find its files, a cache key that changes when they change, its natural channel
count, and how to turn each image into a (channels, size, size) uint8 array. The kinds of named dataset (IDX
files, a folder the user downloads, drawn shapes) say where a dataset's files are and open its source.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from ..checks import PATH_MAX
from ..errors import UserError, first_line
from ..paths import repo_root
from ..registry import DATASETS
from .decode import IMAGE_EXTENSIONS, decoded_stream, default_workers, image_mode, printable
from .synthetic import SHAPES, shape_images
from .transforms import GRAY_MODES, image_to_array

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
    """Every file below `root` with an image extension, sorted, at any depth (an explicit stack of folders, not
    recursion). Hidden and symlinked folders are not entered (no loops, no duplicates); dangling or looping symlinks
    and FIFOs are listed, and skipped with a reason when decoding; folders that cannot be read are passed over."""
    found, folders = [], [str(root)]
    while folders:
        folder = folders.pop()
        try:
            subfolders, names = folder_entries(folder)
        except OSError:  # only a path over the system's limit comes here
            raise path_too_long(root, folder) from None
        folders += subfolders
        found += [Path(name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def folder_entries(folder: str) -> tuple[list[str], list[str]]:
    """The paths of a folder's real (not symlinked) visible subfolders and of its other entries; none when the
    folder cannot be read. Raises OSError (ENAMETOOLONG) when the folder or an entry has a path too long to open."""
    if len(os.fsencode(folder)) >= PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), folder)
    subfolders, others = [], []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_real_folder(entry):
                    if not entry.name.startswith("."):
                        subfolders.append(entry.path)
                elif not entry_is_folder(entry):  # a symlink to a folder is neither entered nor listed
                    others.append(entry.path)
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise
    if any(len(os.fsencode(path)) >= PATH_MAX for path in others):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), folder)
    return subfolders, others


def path_too_long(root: Path, folder: str) -> UserError:
    """The error for a folder under `root` whose files cannot be opened: their paths exceed the system's limit."""
    depth = folder.count(os.sep) - str(root).count(os.sep)
    return UserError(f"{printable(root)} holds folders {depth:,} levels deep whose paths exceed the system's limit "
                     f"of {PATH_MAX:,} bytes, so their images cannot be opened: move them to a shallower folder")


def is_real_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder itself, not a symlink to one."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def entry_is_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder or a symlink to one (False when the link dangles or loops)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


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


def find_idx_files(folders: list[Path], split: str) -> tuple[Path, Path] | None:
    prefix = "train" if split == "train" else "t10k"
    for folder in folders:
        for suffix in ("", ".gz"):
            images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None


# --- the kinds of named dataset (data/datasets.py gives each one its kind): how its files are found and read.
# Each takes the dataset's spec (its name, title and classes) and answers `folder` (where its images are, None when
# not there) and `open` (a source, or a UserError saying how to get the data).

@dataclass(frozen=True)
class IdxFiles:
    """Train and test IDX files (the MNIST format), fetched with torchvision when missing."""

    torchvision_name: str  # the torchvision.datasets class that downloads them, and its folder under data_dir
    system_folder: Path  # where a system package installs them
    system_package: str = ""  # that package, named in the not-found message (e.g. Debian's dataset-fashion-mnist)
    test_split: ClassVar[bool] = True

    def folders(self, spec, data_dir: Path) -> list[Path]:
        return [data_dir / self.torchvision_name / "raw", data_dir / spec.name, self.system_folder]

    def folder(self, spec, data_dir: Path) -> Path | None:
        found = find_idx_files(self.folders(spec, data_dir), "train")
        return found[0].parent if found else None

    def open(self, spec, data_dir: Path, download: bool, split: str) -> IdxSource:
        folders = self.folders(spec, data_dir)
        found = find_idx_files(folders, split)
        if found is None and download:
            import torchvision.datasets

            try:
                getattr(torchvision.datasets, self.torchvision_name)(root=str(data_dir), train=split == "train",
                                                                     download=True)
            except Exception as error:  # no network, mirror down, disk full: all end in the message below
                print(f"could not download {spec.title}: {first_line(error)}")
            found = find_idx_files(folders, split)
        if found is None:
            package = f"`apt-get install {self.system_package}` (Debian/Ubuntu) or " if self.system_package else ""
            first, second, third = (printable(folder) for folder in folders)
            raise UserError(f"{spec.title} not found in {first}, {second} or {third} and not downloadable: "
                            f"{package}copy the four *-idx?-ubyte.gz files into {first}")
        return IdxSource(f"{spec.title} ({split})", *found, spec.classes)


@dataclass(frozen=True)
class NamedFolder:
    """A folder of images under data_dir, which the user downloads (no labels, no test split)."""

    candidates: tuple[str, ...]  # folders under data_dir to look in, in order
    how: str  # how to get the images, for the not-found message
    test_split: ClassVar[bool] = False

    def folder(self, spec, data_dir: Path) -> Path | None:
        return next((data_dir / name for name in self.candidates if (data_dir / name).is_dir()), None)

    def open(self, spec, data_dir: Path, download: bool, split: str) -> FolderSource:
        folder = self.folder(spec, data_dir)
        if folder is None:
            raise UserError(f"{spec.name} not found in {printable(data_dir)}: {self.how}")
        return FolderSource(folder)


@dataclass(frozen=True)
class DrawnShapes:
    """The synthetic shapes, drawn on demand: no files."""

    test_split: ClassVar[bool] = False

    def folder(self, spec, data_dir: Path) -> None:
        return None

    def open(self, spec, data_dir: Path, download: bool, split: str) -> SyntheticSource:
        return SyntheticSource()


def named(data: str):
    """The spec of the dataset named `data` (data/datasets.py), None for anything else (a folder path)."""
    return DATASETS.spec(data) if data in DATASETS.places else None


def data_folder(data: str, data_dir: Path) -> Path | None:
    """The folder a `--data` value reads its images from, when it exists (None for synthetic data, a dataset not
    there yet or a missing path); nothing is listed or decoded, so a run can refuse folders before it starts."""
    spec = named(data)
    if spec is not None:
        return spec.folder(data_dir)
    return next((candidate for candidate in folder_candidates(data) if candidate.is_dir()), None)


def folder_candidates(data: str) -> list[Path]:
    """Where a folder named by `--data` may be: the path itself, or relative to the working directory or the repo."""
    path = Path(data).expanduser()
    return [path] if path.is_absolute() else [Path.cwd() / path, repo_root() / path]


def resolve_source(data: str, data_dir: Path, download: bool = True, split: str = "train"):
    """Turn a `--data` value into a source, or raise UserError saying what to do."""
    spec = named(data)
    if spec is not None:
        return spec.open(data_dir, download, split)
    for candidate in folder_candidates(data):
        if candidate.is_dir():
            return FolderSource(candidate)
        if candidate.exists():
            raise UserError(f"--data {printable(data)} is a file: give a folder of images (searched recursively) "
                            f"or one of {DATASETS.listed()}")
    if re.fullmatch(r"[A-Za-z0-9_-]+", data):
        raise UserError(f"unknown dataset '{data}': use one of {DATASETS.listed()} or a path to a folder of images")
    raise UserError(f"image folder {printable(data)} not found: check the path (relative paths start from the "
                    "working directory or the repo)")
