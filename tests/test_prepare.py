"""`dcgan prepare`: face crops from raw pictures into a training folder, with a summary and clear refusals."""

import numpy as np
import pytest
from PIL import Image

from dcgan.cli import main
from dcgan.data.prepare import prepare, square_around
from dcgan.errors import UserError


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
    assert written == ["people/astronaut_0.png"]
    crop = Image.open(target / "people" / "astronaut_0.png")
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
    (dict(size=4), "--size must be between"),
    (dict(margin=-1), "--margin must be between"),
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
