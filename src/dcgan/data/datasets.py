"""The named datasets: one spec each, the only place that knows a dataset by its name.

A spec says how the dataset's images are found, fetched and decoded (its kind, from sources.py), the names of its
classes (none for unlabelled data), whether it has a test split, and which face detector fits it. The settings
list the names through registry.py's DATASETS; every other module asks the spec. Adding a dataset is its spec
here and its line in DATASETS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..registry import DATASETS
from .sources import DrawnShapes, IdxFiles, NamedFolder, named
from .synthetic import SHAPES


@dataclass(frozen=True)
class Dataset:
    name: str  # the --data value, as registered in DATASETS
    title: str  # how messages and feature labels name it
    source: IdxFiles | NamedFolder | DrawnShapes  # how its files are found, fetched and read
    classes: tuple[str, ...] = ()  # its label names, in label order; () for unlabelled data
    faces: str | None = None  # the face detector kind of a dataset of faces (data/faces.py), else None

    @property
    def test_split(self) -> bool:
        return self.source.test_split

    @property
    def has_classifier(self) -> bool:
        """Whether a feature classifier can be trained on it: labelled, with a test split to measure it on."""
        return bool(self.classes) and self.test_split

    def folder(self, data_dir: Path) -> Path | None:
        """The folder its images are read from, when they are there (None for drawn data)."""
        return self.source.folder(self, data_dir)

    def open(self, data_dir: Path, download: bool = True, split: str = "train"):
        """Its source for `split` ("train" or "test"), or a UserError saying how to get the data."""
        if split != "train" and not self.test_split:
            raise UserError(f"{self.title} has no {split} split: use its training images")
        return self.source.open(self, data_dir, download, split)


FASHION_MNIST = Dataset(
    "fashion-mnist", "Fashion-MNIST",
    IdxFiles("FashionMNIST", Path("/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist"),
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"))
MNIST = Dataset("mnist", "MNIST", IdxFiles("MNIST", Path("/usr/share/datasets/mnist")),
                tuple(str(digit) for digit in range(10)))
CELEBA = Dataset("celeba", "CelebA", NamedFolder(
    ("celeba/img_align_celeba", "img_align_celeba", "celeba"),
    "download CelebA's img_align_celeba.zip (202,599 aligned faces) and unzip it into data/celeba/"), faces="human")
ANIME = Dataset("anime", "anime faces", NamedFolder(
    ("anime/images", "anime"),
    "download the Kaggle 'Anime Face Dataset' (63,632 faces) and put its images in data/anime/"), faces="anime")
SYNTHETIC = Dataset("synthetic", "synthetic shapes", DrawnShapes(), SHAPES)


def specs() -> list[Dataset]:
    """Every registered dataset's spec, in the registry's order."""
    return [DATASETS.spec(name) for name in DATASETS.names]


def labelled_names() -> str:
    """The datasets with labels, for messages: "fashion-mnist, mnist, synthetic"."""
    return ", ".join(spec.name for spec in specs() if spec.classes)


def has_classifier(data: str) -> bool:
    """Whether the --data value `data` names a dataset a feature classifier can be trained on (a folder never)."""
    spec = named(data)
    return spec is not None and spec.has_classifier


def classifier_names() -> str:
    """The datasets a feature classifier can be trained on, for messages: "fashion-mnist, mnist"."""
    return ", ".join(spec.name for spec in specs() if spec.has_classifier)
