"""Face detectors: anime faces with the `animeface` package, human faces with OpenCV's Haar cascade.

Both are optional dependencies (`pip install -e ".[faces]"`); asking for a detector without its package is a
one-line error that says what to install. A detector takes a PIL image and returns face boxes (x, y, w, h).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from .sources import named

Box = tuple[int, int, int, int]  # x, y, width, height in pixels
Detector = Callable[[Image.Image], list[Box]]

PACKAGES = {"anime": "animeface", "human": "opencv-python-headless<5"}  # what each detector needs installed


def missing_package(kind: str) -> UserError:
    return UserError(f"{kind} face detection needs the {PACKAGES[kind].split('<')[0]} package: "
                     f"pip install '{PACKAGES[kind]}' (or pip install -e \".[faces]\")")


def anime_detector() -> Detector:
    try:
        import animeface
    except ImportError:
        raise missing_package("anime") from None

    def detect(image: Image.Image) -> list[Box]:
        return [(face.face.pos.x, face.face.pos.y, face.face.pos.width, face.face.pos.height)
                for face in animeface.detect(image.convert("RGB"))]
    return detect


def human_detector(min_neighbors: int = 5) -> Detector:
    try:
        import cv2
    except ImportError:
        raise missing_package("human") from None
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved the Haar cascades out of the main package
        raise UserError(f"OpenCV {cv2.__version__} has no Haar cascades: pip install '{PACKAGES['human']}'")
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))

    def detect(image: Image.Image) -> list[Box]:
        found = cascade.detectMultiScale(np.asarray(image.convert("L")), scaleFactor=1.1,
                                         minNeighbors=min_neighbors, minSize=(24, 24))
        return [tuple(int(value) for value in box) for box in found]
    return detect


def face_detector(kind: str) -> Detector:
    if kind not in PACKAGES:
        raise UserError(f"unknown face kind '{kind}': use {' or '.join(PACKAGES)}")
    return anime_detector() if kind == "anime" else human_detector()


def faces_for_dataset(data: str) -> str | None:
    """The detector kind of a named dataset of faces (its spec's `faces`), None for any other data."""
    spec = named(data)
    return spec.faces if spec is not None else None
