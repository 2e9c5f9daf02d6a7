"""`python -m dcgan prepare SRC DST --crop-faces anime|human --size 96`: turn raw pictures into a training folder.

With --crop-faces, every face found is cropped as a square with a margin around it (kept inside the picture);
without it, each picture is centre-cropped. Each crop is resized to --size and written as
DST/<path under SRC>_<k>.png, the picture's extension joined to its name by a dash (people/ann.jpg ->
people/ann-jpg_0.png), so that ann.jpg and ann.png never write the same file. Files that cannot be used are
skipped and counted by reason, as when training (see decode); a summary says what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image

from ..checks import PATH_MAX, check_number, check_path
from ..errors import UserError
from ..files import WriteError, atomic_write_bytes, png_bytes
from ..progress import progress_bar
from .decode import default_workers, parallel_map, printable, read_image
from .faces import PACKAGES, Box, face_detector
from .sources import list_image_files
from .transforms import fit_square, to_channels


@dataclass
class PrepareSummary:
    images_read: int = 0  # files that decoded
    faces_found: int = 0  # faces the detector reported (with --crop-faces)
    too_small: int = 0  # faces skipped as smaller than --min-face
    no_face: int = 0  # pictures in which no face was found
    written: int = 0  # files written to DST, each under its own name
    skipped: Counter = field(default_factory=Counter)  # unreadable files by reason

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{count} {reason}" for reason, count in self.skipped.most_common()) or "none"
        return [f"images read: {self.images_read:,}", f"faces found: {self.faces_found:,} "
                f"({self.too_small:,} too small, {self.no_face:,} pictures without a face)",
                f"images written: {self.written:,}", f"files skipped: {skipped}"]


def square_around(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square (left, top, right, bottom) centred on `box`, `margin` x its size wider on each side,
    shifted (and if need be shrunk) to lie inside a width x height picture."""
    x, y, w, h = box
    side = min(round(max(w, h) * (1 + 2 * margin)), width, height)
    left = min(max(round(x + w / 2 - side / 2), 0), width - side)
    top = min(max(round(y + h / 2 - side / 2), 0), height - side)
    return left, top, left + side, top + side


_detectors: dict = {}  # one detector per kind per process


def crops_of(path: str, crop_faces: str, size: int, margin: float, min_face: int) -> tuple:
    """(PNG bytes of each crop, faces found, faces too small, skip reason or None) for one file."""
    image, reason = read_image(path)
    if image is None:
        return [], 0, 0, reason
    picture = to_channels(image, 3)
    if not crop_faces:
        return [png_bytes(fit_square(picture, size))], 0, 0, None
    if crop_faces not in _detectors:
        _detectors[crop_faces] = face_detector(crop_faces)
    boxes = _detectors[crop_faces](picture)
    kept = [box for box in boxes if min(box[2], box[3]) >= min_face]
    squares = [square_around(box, margin, *picture.size) for box in kept]
    crops = [png_bytes(picture.crop(square).resize((size, size), Image.Resampling.LANCZOS)) for square in squares]
    return crops, len(boxes), len(boxes) - len(kept), None


def output_stem(path: Path, src: Path) -> Path:
    """Where the crops of a picture go, less the `_<k>.png`: its path under SRC with the extension joined by a dash
    (x/a.jpg -> x/a-jpg). Extensions hold no dash, so different pictures never share a stem."""
    relative = path.relative_to(src)
    name, _, extension = relative.name.rpartition(".")
    return relative.with_name(f"{name}-{extension}")


def check_output_depth(files: list[Path], src: Path, dst: Path) -> None:
    """Refuse before any work when the copy of the deepest picture under DST would have a path too long to write."""
    longest = max(len(bytes(output_stem(path, src))) for path in files)
    if len(bytes(dst.resolve())) + longest + len("/_000.png") >= PATH_MAX:
        raise UserError(f"the images under {printable(src)} lie so deep that their copies under DST {printable(dst)} "
                        f"would exceed the system's path limit of {PATH_MAX:,} bytes: choose a DST with a shorter path")


def check_folders(src: Path, dst: Path, overwrite: bool) -> None:
    check_path("SRC", str(src))
    check_path("DST", str(dst))
    if not src.is_dir():
        raise UserError(f"{printable(src)} is not a folder: give the folder of raw pictures as SRC")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise UserError(f"DST {printable(dst)} lies inside SRC {printable(src)}: write the training folder "
                        "somewhere else")
    if dst.is_file():
        raise UserError(f"DST {printable(dst)} is a file: give a folder to write the images into")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise UserError(f"DST {printable(dst)} is not empty: choose a new folder or pass --overwrite "
                        "(files of the same name are replaced, others kept)")


def prepare(src: str, dst: str, crop_faces: str = "", size: int = 96, margin: float = 0.25, min_face: int = 32,
            workers: int = 0, overwrite: bool = False, progress: bool = True) -> PrepareSummary:
    """Write DST's training images from SRC's pictures; returns the counts."""
    source, target = Path(src).expanduser(), Path(dst).expanduser()
    if crop_faces and crop_faces not in PACKAGES:
        raise UserError(f"unknown --crop-faces '{crop_faces}': use {' or '.join(PACKAGES)}")
    check_number("size", size, 8, 1024)  # pixels
    check_number("margin", margin, 0, 2)  # a share of the face's size
    check_folders(source, target, overwrite)
    if crop_faces:
        face_detector(crop_faces)  # a missing package fails here, before any work
    files = list_image_files(source)
    if not files:
        raise UserError(f"no pictures found under {printable(source)}")
    check_output_depth(files, source, target)
    summary = PrepareSummary()
    job = partial(crops_of, crop_faces=crop_faces, size=size, margin=margin, min_face=min_face)
    for path, (crops, found, too_small, reason) in zip(files, progress_bar(
            parallel_map(job, [str(path) for path in files], workers or default_workers(), 16),
            total=len(files), desc="prepare", unit="picture", disable=not progress)):
        if reason:
            summary.skipped[reason] += 1
            continue
        summary.images_read += 1
        summary.faces_found += found
        summary.too_small += too_small
        summary.no_face += bool(crop_faces) and found == 0
        stem = target / output_stem(path, source)
        for index, data in enumerate(crops):
            try:
                atomic_write_bytes(stem.parent / f"{stem.name}_{index}.png", data)
            except WriteError as error:  # (a full disk): the images written so far are whole, and stay
                raise WriteError(f"{error}; DST holds the {summary.written:,} images written before it: then run "
                                 "prepare again with --overwrite") from None
            summary.written += 1
    return summary
