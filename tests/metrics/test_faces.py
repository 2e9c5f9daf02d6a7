"""Face detectors and the face rate: a real photograph for human faces; plain images where no face can be."""

import builtins
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.data.faces import face_detector, faces_for_dataset
from dcgan.data.transforms import to_signed
from dcgan.errors import UserError
from dcgan.metrics.face_rate import face_rate, to_pil

ASTRONAUT_FACE = (177, 66, 95, 95)  # where the Haar cascade finds her face in the 512x512 photo (x, y, w, h)


def face_crops(photo, count: int, size: int = 64) -> torch.Tensor:
    """`count` slightly different square crops around the astronaut's face, as training-style images."""
    image = Image.open(photo).convert("RGB")
    crops = []
    for shift in range(count):
        left, top = 150 + 3 * (shift % 4), 30 + 3 * (shift // 4)
        crop = image.crop((left, top, left + 150, top + 150)).resize((size, size), Image.Resampling.LANCZOS)
        crops.append(np.asarray(crop).transpose(2, 0, 1))
    return to_signed(torch.from_numpy(np.stack(crops)))


def overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_the_human_detector_finds_the_face_in_a_real_photo(astronaut_photo):
    detect = face_detector("human")
    boxes = detect(Image.open(astronaut_photo))
    assert len(boxes) == 1 and overlap(boxes[0], ASTRONAUT_FACE) > 0.7
    assert detect(Image.new("RGB", (256, 256), (128, 128, 128))) == []


def test_face_rate_counts_images_with_a_face(astronaut_photo):
    detect = face_detector("human")
    faces = face_crops(astronaut_photo, 8)
    noise = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert face_rate(faces, detect) == 1.0
    assert face_rate(noise, detect) == 0.0
    assert face_rate(torch.cat([faces[:2], noise[:6]]), detect) == pytest.approx(2 / 8)
    assert to_pil(faces[0]).size == (256, 256)  # small images are upscaled before detection


def test_the_anime_detector_runs_and_finds_nothing_in_plain_images():
    detect = face_detector("anime")
    assert detect(Image.new("RGB", (256, 256), (250, 220, 200))) == []
    gray_noise = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert face_rate(gray_noise, detect) == 0.0


@pytest.mark.parametrize("kind, module, package", [("anime", "animeface", "animeface"),
                                                   ("human", "cv2", "opencv-python-headless")])
def test_a_missing_detector_package_says_what_to_install(monkeypatch, kind, module, package):
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name == module:
            raise ImportError(f"No module named '{module}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(UserError, match=f"needs the {package} package: pip install"):
        face_detector(kind)


def test_face_datasets_pick_their_detector():
    assert faces_for_dataset("anime") == "anime" and faces_for_dataset("celeba") == "human"
    assert faces_for_dataset("fashion-mnist") is None
    with pytest.raises(UserError, match="unknown face kind"):
        face_detector("cat")


def test_evaluate_reports_face_rates_of_generated_and_real_images(astronaut_photo, random_inception_weights,
                                                                  small_config, tmp_path, capsys):
    from dcgan import train
    from dcgan.cli import main

    folder = tmp_path / "faces"
    folder.mkdir()
    for index, image in enumerate(face_crops(astronaut_photo, 16)):
        Image.fromarray(((image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(folder / f"{index}.png")
    train(small_config(data=str(folder), epochs=1, limit=0, batch_size=8, image_size=32), log=lambda line: None)
    code = main(["evaluate", "--run", "test", "--n", "16", "--faces", "human", "--features", "inception",
                 "--inception-weights", str(random_inception_weights), "--checkpoints-dir",
                 str(tmp_path / "checkpoints"), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(line for line in out.splitlines() if "face rate (human)" in line)
    assert "0.000 generated, 1.000 real (16 each)" in line  # a 2-step G draws no faces; every real crop has one
