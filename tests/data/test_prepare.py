"""`dcgan prepare`: face crops from raw pictures into a training folder, with a summary and clear refusals."""

import os

import numpy as np
import pytest
from PIL import Image

from dcgan.cli import main
from dcgan.data.prepare import prepare, square_around
from dcgan.errors import UserError
from tests.helpers import file_names


def test_the_square_around_a_face_has_its_margin_and_stays_inside_the_picture():
    assert square_around((40, 40, 20, 20), 0.25, 100, 100) == (35, 35, 65, 65)  # 20 * 1.5 = 30 around the centre
    assert square_around((0, 0, 20, 20), 0.25, 100, 100) == (0, 0, 30, 30)  # shifted in at the corner
    assert square_around((90, 10, 10, 30), 0.5, 100, 80) == (40, 0, 100, 60)  # 30 * 2 = 60, pushed left and down
    assert square_around((10, 10, 80, 80), 1.0, 100, 60) == (20, 0, 80, 60)  # shrunk to the short side, centred


@pytest.fixture
def raw_pictures(tmp_path, astronaut_photo):
    """A photo with a face (in a subfolder), a picture without one, a corrupt file and a non-image file."""
    source = tmp_path / "raw"
    (source / "people").mkdir(parents=True)
    (source / "people" / "astronaut.png").write_bytes(astronaut_photo.read_bytes())
    Image.new("RGB", (300, 200), (90, 140, 200)).save(source / "sky.jpg")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (source / "notes.txt").write_text("not a picture")
    return source


def test_prepare_crops_each_face_and_summarises(raw_pictures, tmp_path):
    target = tmp_path / "faces"
    summary = prepare(str(raw_pictures), str(target), "human", size=96, progress=False)
    assert (summary.images_read, summary.faces_found, summary.no_face, summary.written) == (2, 1, 1, 1)
    assert dict(summary.skipped) == {"corrupt or truncated": 1}
    written = sorted(path.relative_to(target).as_posix() for path in target.rglob("*.png"))
    assert written == ["people/astronaut-png_0.png"]
    crop = Image.open(target / "people" / "astronaut-png_0.png")
    assert crop.size == (96, 96) and crop.mode == "RGB"
    # the crop is the face box (177, 66, 95 px) widened by 25 % each side: 142 px from (154, 42)
    photo = Image.open(raw_pictures / "people" / "astronaut.png").convert("RGB")
    expected = photo.crop((154, 42, 296, 184)).resize((96, 96), Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(crop, dtype=int) - np.asarray(expected, dtype=int)).mean() < 3


def test_prepare_without_face_cropping_centre_crops_every_picture(raw_pictures, tmp_path):
    target = tmp_path / "squares"
    summary = prepare(str(raw_pictures), str(target), size=64, progress=False)
    assert (summary.images_read, summary.written, summary.faces_found) == (2, 2, 0)
    assert {Image.open(path).size for path in target.rglob("*.png")} == {(64, 64)}


def test_faces_smaller_than_min_face_are_skipped_and_counted(raw_pictures, tmp_path):
    summary = prepare(str(raw_pictures), str(tmp_path / "big"), "human", min_face=200, progress=False)
    assert (summary.faces_found, summary.too_small, summary.written) == (1, 1, 0)


def test_the_command_prints_the_summary(raw_pictures, tmp_path, capsys):
    target = tmp_path / "out"
    assert main(["prepare", str(raw_pictures), str(target), "--crop-faces", "human", "--size", "64",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "images read: 2" in out and "faces found: 1" in out and "files skipped: 1 corrupt or truncated" in out
    assert "wrote 1 images of 64x64" in out
    assert main(["prepare", str(raw_pictures), str(target), "--crop-faces", "human", "--no-progress"]) == 2
    assert "is not empty" in capsys.readouterr().err  # nothing is overwritten unless asked
    assert main(["prepare", str(raw_pictures), str(target), "--crop-faces", "human", "--overwrite",
                 "--no-progress"]) == 0


@pytest.mark.parametrize("change, message", [
    (dict(src="missing"), "is not a folder"),
    (dict(dst="raw/inside"), "lies inside SRC"),
    (dict(size=4), "--size must be at least 8"),
    (dict(margin=-1), "--margin must be 0 or more"),
    (dict(crop_faces="dog"), "unknown --crop-faces"),
])
def test_prepare_refuses_bad_input_before_writing(raw_pictures, tmp_path, change, message):
    args = dict(src="raw", dst="out", crop_faces="human", size=96, margin=0.25)
    args.update(change)
    with pytest.raises(UserError, match=message):
        prepare(str(tmp_path / args.pop("src")), str(tmp_path / args.pop("dst")), progress=False, **args)
    assert not (tmp_path / "out").exists() and not (raw_pictures / "inside").exists()


def test_a_folder_without_pictures_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no pictures found"):
        prepare(str(tmp_path / "empty"), str(tmp_path / "out"), progress=False)


def test_pictures_of_the_same_name_write_separate_files(tmp_path):
    source = tmp_path / "raw"
    colours = {"a.png": (250, 0, 0), "a.jpg": (0, 250, 0), "x/a.png": (0, 0, 250), "y/a.png": (250, 250, 250),
               "a.b.png": (0, 250, 250)}
    for name, colour in colours.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(source / name, quality=100)
    target = tmp_path / "out"
    summary = prepare(str(source), str(target), size=32, progress=False)
    assert file_names(target) == ["a-jpg_0.png", "a-png_0.png", "a.b-png_0.png", "x/a-png_0.png", "y/a-png_0.png"]
    assert summary.written == len(file_names(target)) == summary.images_read == 5
    for name, written in [("a.png", "a-png_0.png"), ("a.jpg", "a-jpg_0.png"), ("x/a.png", "x/a-png_0.png"),
                          ("y/a.png", "y/a-png_0.png"), ("a.b.png", "a.b-png_0.png")]:
        pixel = np.asarray(Image.open(target / written))[16, 16]
        assert np.abs(pixel.astype(int) - colours[name]).max() <= 3, (name, pixel)  # its own picture, not another's


def test_the_command_reports_as_many_images_as_it_wrote(tmp_path, capsys):
    source = tmp_path / "raw"
    source.mkdir()
    for name in ("cat.png", "cat.jpg", "cat.webp"):
        Image.new("RGB", (40, 30), (20, 40, 60)).save(source / name)
    assert main(["prepare", str(source), str(tmp_path / "out"), "--size", "32", "--no-progress"]) == 0
    assert "images written: 3" in capsys.readouterr().out and len(file_names(tmp_path / "out")) == 3


def test_elongated_pictures_are_skipped_with_their_reason(tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    Image.new("RGB", (40, 30), (20, 40, 60)).save(source / "photo.png")
    Image.new("L", (1, 30_000), 255).save(source / "strip.png")
    summary = prepare(str(source), str(tmp_path / "out"), size=32, progress=False)
    assert dict(summary.skipped) == {"aspect ratio over 8:1": 1} and summary.written == 1
    assert "files skipped: 1 aspect ratio over 8:1" in summary.lines()


def test_a_picture_named_in_latin_1_is_cropped_under_the_same_bytes(tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    try:
        with open(os.path.join(os.fsencode(str(source)), b"caf\xe9.png"), "wb") as handle:
            Image.new("RGB", (40, 30), (20, 40, 60)).save(handle, format="PNG")
    except OSError as error:
        pytest.skip(f"this file system refuses names that are not UTF-8 ({error})")
    target = tmp_path / "out"
    summary = prepare(str(source), str(target), size=32, progress=False)
    assert summary.written == 1 and os.listdir(os.fsencode(str(target))) == [b"caf\xe9-png_0.png"]
