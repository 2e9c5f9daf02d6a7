"""Data sources and the decoded cache, on generated image folders and real Fashion-MNIST."""

import json
import zlib

import numpy as np
import pytest
from PIL import Image

from dcgan.data import cache as cache_module
from dcgan.data.cache import load_image_data
from dcgan.data.decode import PARALLEL_FROM
from dcgan.data.sources import SYNTHETIC_COUNT, read_idx
from dcgan.errors import UserError


def write_images(folder, count, mode="RGB", ext="png", size=(40, 30), start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        colour = (i * 7 % 256, 100, 200) if mode == "RGB" else i * 7 % 256
        Image.new(mode, size, colour).save(folder / f"img_{i:03d}.{ext}")


def test_folder_of_mixed_files_is_decoded_recursively_and_bad_files_are_counted(tmp_path):
    root = tmp_path / "faces"
    write_images(root, 4, ext="png")
    write_images(root / "sub" / "deeper", 3, ext="jpg", start=10)
    Image.new("RGBA", (50, 50), (0, 255, 0, 128)).save(root / "alpha.png")
    Image.new("P", (30, 30)).save(root / "palette.bmp")
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(root / "cmyk.jpg")
    Image.new("RGB", (33, 33), (9, 9, 9)).save(root / "pic.webp")
    Image.new("RGB", (20, 20)).save(root / "UPPER.JPEG")
    (root / "notes.txt").write_text("not an image, and not an image extension either")
    (root / "fake.jpg").write_text("this is text with a .jpg name")
    (root / "empty.png").write_bytes(b"")
    good = root / "img_000.png"
    (root / "truncated.png").write_bytes(good.read_bytes()[:60])
    (root / ".hidden").mkdir()
    write_images(root / ".hidden", 2)

    data = load_image_data(str(root), 32, 0, tmp_path / "data", progress=False)
    assert len(data) == 4 + 3 + 5
    assert data.images.shape == (12, 3, 32, 32) and data.images.dtype == np.uint8
    assert data.labels is None
    assert data.skipped == {"not an image": 1, "empty file": 1, "corrupt or truncated": 1}
    assert data.files_seen == 15
    summary = data.summary()
    assert "12 images at 32x32, 3 channels" in summary
    assert "skipped 3 of 15 files" in summary and "1 empty file" in summary
    assert "\n" not in summary


def test_large_folders_are_decoded_by_worker_processes_in_file_order(tmp_path):
    root = tmp_path / "many"
    write_images(root, PARALLEL_FROM + 40, size=(36, 36))
    (root / "img_050.png").write_bytes(b"broken")
    data = load_image_data(str(root), 32, 0, tmp_path / "data", progress=False)
    assert len(data) == PARALLEL_FROM + 39 and data.skipped == {"not an image": 1}
    kept = [i for i in range(PARALLEL_FROM + 40) if i != 50]
    # each image is one flat colour whose red value encodes its index: order survives the worker pool
    assert [int(v) for v in data.images[:, 0, 16, 16]] == [i * 7 % 256 for i in kept]


def test_grayscale_folders_stay_grayscale_unless_channels_are_forced(tmp_path):
    write_images(tmp_path / "gray", 3, mode="L")
    assert load_image_data(str(tmp_path / "gray"), 32, 0, tmp_path / "data", progress=False).channels == 1
    forced = load_image_data(str(tmp_path / "gray"), 32, 3, tmp_path / "data", progress=False)
    assert forced.channels == 3
    assert np.array_equal(forced.images[:, 0], forced.images[:, 2])  # grey replicated into R, G and B


def test_cache_is_reused_and_rebuilt_when_the_folder_changes(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    write_images(root, 5)
    first = load_image_data(str(root), 32, 0, tmp_path / "data", progress=False)
    assert first.cache_file.parent == tmp_path / "data" / ".cache"

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache was valid")

    monkeypatch.setattr(cache_module, "build_cache", no_decoding)
    second = load_image_data(str(root), 32, 0, tmp_path / "data", progress=False)
    assert np.array_equal(first.images, second.images)
    monkeypatch.undo()

    write_images(root, 2, start=100)
    third = load_image_data(str(root), 32, 0, tmp_path / "data", progress=False)
    assert len(third) == 7 and third.cache_file != first.cache_file
    other_size = load_image_data(str(root), 64, 0, tmp_path / "data", progress=False)
    assert other_size.images.shape == (7, 3, 64, 64)


def test_a_damaged_cache_is_rebuilt(tmp_path):
    write_images(tmp_path / "imgs", 5)
    data = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    reference = np.array(data.images)
    with open(data.cache_file, "r+b") as handle:
        handle.truncate(100)
    rebuilt = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    assert np.array_equal(np.array(rebuilt.images), reference)


def flip_byte(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0xFF]))


def test_a_cache_with_one_flipped_byte_is_rebuilt_from_the_images(tmp_path):
    write_images(tmp_path / "imgs", 5)
    data = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    reference, size = np.array(data.images), data.cache_file.stat().st_size
    flip_byte(data.cache_file, size // 2)  # the same size: only the checksum tells
    assert data.cache_file.stat().st_size == size
    rebuilt = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    assert np.array_equal(np.array(rebuilt.images), reference)


def write_tiny_mnist(data_dir):
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    header = bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])  # unsigned bytes, 3 dims: 5 x 28 x 28
    (raw / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    (raw / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5]) + bytes([3, 1, 4, 1, 5]))


def test_a_cache_with_damaged_labels_is_rebuilt(tmp_path):
    write_tiny_mnist(tmp_path / "data")
    data = load_image_data("mnist", 32, 0, tmp_path / "data", download=False, progress=False)
    labels_file = data.cache_file.with_suffix(".labels.npy")
    flip_byte(labels_file, labels_file.stat().st_size - 8)  # the first byte of the last label: 5 -> 250
    assert np.load(labels_file)[-1] == 250  # still a valid .npy file, only wrong
    rebuilt = load_image_data("mnist", 32, 0, tmp_path / "data", download=False, progress=False)
    assert list(rebuilt.labels) == [3, 1, 4, 1, 5]


@pytest.mark.parametrize("damage", ["garbage", "not a dict", "no checksums (an old cache)", "wrong checksum"])
def test_a_cache_with_a_bad_description_is_rebuilt(tmp_path, damage):
    write_images(tmp_path / "imgs", 5)
    data = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    meta_file = data.cache_file.with_suffix(".json")
    meta = json.loads(meta_file.read_text())
    checksums = dict(meta["crc32"])
    assert checksums == {"images": zlib.crc32(data.cache_file.read_bytes())}
    if damage == "garbage":
        meta_file.write_bytes(b'\x00{"shape": [5, 3, 3')
    elif damage == "not a dict":
        meta_file.write_text("[5, 3, 32, 32]")
    elif damage == "wrong checksum":
        meta_file.write_text(json.dumps({**meta, "crc32": {"images": checksums["images"] ^ 1}}))
    else:
        meta_file.write_text(json.dumps({key: value for key, value in meta.items() if key != "crc32"}))
    rebuilt = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    assert np.array_equal(rebuilt.images, data.images) and len(rebuilt) == 5
    assert json.loads(meta_file.read_text())["crc32"] == checksums  # described again, checksum included


def test_a_valid_cache_is_checked_in_chunks_and_reused(tmp_path, monkeypatch):
    write_images(tmp_path / "imgs", 5)
    data = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    chunk = data.cache_file.stat().st_size // 4 + 1
    assert cache_module.crc32_of_file(data.cache_file, chunk) == zlib.crc32(data.cache_file.read_bytes())
    checked = []
    crc32_of_file = cache_module.crc32_of_file
    monkeypatch.setattr(cache_module, "crc32_of_file", lambda path: checked.append(path) or crc32_of_file(path, chunk))
    monkeypatch.setattr(cache_module, "build_cache", lambda *args, **kwargs: pytest.fail("rebuilt a valid cache"))
    again = load_image_data(str(tmp_path / "imgs"), 32, 0, tmp_path / "data", progress=False)
    assert checked == [data.cache_file] and np.array_equal(again.images, data.images)


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path):
    write_images(tmp_path / "imgs", 3)
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data folder should be")
    with pytest.raises(UserError, match="cannot write the image cache .* --data-dir"):
        load_image_data(str(tmp_path / "imgs"), 32, 0, blocked, progress=False)


def test_synthetic_data_is_the_same_every_time(tmp_path):
    first = load_image_data("synthetic", 32, 0, tmp_path / "a", progress=False)
    second = load_image_data("synthetic", 32, 0, tmp_path / "b", progress=False)
    assert len(first) == SYNTHETIC_COUNT and first.channels == 3
    assert np.array_equal(first.images, second.images)
    assert set(np.unique(first.labels)) == {0, 1, 2}
    assert set(first.label_counts()) == {"circle", "square", "triangle"}
    assert sum(first.head(100).label_counts().values()) == 100
    assert first.images.std() > 30  # shapes on backgrounds, not a blank array


def test_head_limits_the_number_of_images(tmp_path):
    data = load_image_data("synthetic", 32, 0, tmp_path, progress=False).head(100)
    assert len(data) == 100 and len(data.labels) == 100


@pytest.mark.parametrize("data,message", [
    ("cifar10", "unknown dataset 'cifar10'"),
    ("./no/such/folder", "image folder ./no/such/folder not found"),
    ("celeba", "celeba not found"),
    ("anime", "anime not found"),
])
def test_bad_data_arguments_say_what_to_do(tmp_path, monkeypatch, data, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=message) as error:
        load_image_data(data, 32, 0, tmp_path / "data", progress=False)
    assert "\n" not in str(error.value)


def test_folder_without_images_and_file_instead_of_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match="no images"):
        load_image_data(str(tmp_path / "empty"), 32, 0, tmp_path / "data", progress=False)
    with pytest.raises(UserError, match="is a file"):
        load_image_data(str(tmp_path / "empty" / "readme.txt"), 32, 0, tmp_path / "data", progress=False)


def test_folder_where_nothing_decodes_is_an_error_not_an_empty_dataset(tmp_path):
    (tmp_path / "junk").mkdir()
    for i in range(3):
        (tmp_path / "junk" / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="none of the 3 image files"):
        load_image_data(str(tmp_path / "junk"), 32, 0, tmp_path / "data", progress=False)


def test_named_folders_are_found_in_the_data_folder(tmp_path):
    write_images(tmp_path / "data" / "celeba" / "img_align_celeba", 3)
    data = load_image_data("celeba", 64, 0, tmp_path / "data", progress=False)
    assert len(data) == 3 and data.images.shape[-1] == 64


def test_mnist_missing_without_download_explains_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="MNIST not found .* copy the four"):
        load_image_data("mnist", 32, 0, tmp_path / "data", download=False, progress=False)


def test_failed_download_ends_in_the_same_clear_error(tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(UserError, match="not downloadable"):
        load_image_data("mnist", 32, 0, tmp_path / "data", download=True, progress=False)
    assert "could not download MNIST" in capsys.readouterr().out


def test_idx_files_in_the_torchvision_layout_are_found(tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    header = bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])  # unsigned bytes, 3 dims: 5 x 28 x 28
    (raw / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    (raw / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5]) + bytes([3, 1, 4, 1, 5]))
    data = load_image_data("mnist", 32, 0, tmp_path / "data", download=False, progress=False)
    assert data.images.shape == (5, 1, 32, 32) and list(data.labels) == [3, 1, 4, 1, 5]
    (raw / "train-images-idx3-ubyte").write_bytes(header + b"short")
    with pytest.raises(UserError, match="truncated"):
        read_idx(raw / "train-images-idx3-ubyte")


def test_real_fashion_mnist(fashion_mnist_available, tmp_path):
    images = read_idx(fashion_mnist_available / "train-images-idx3-ubyte.gz")
    assert images.shape == (60000, 28, 28)
    data = load_image_data("fashion-mnist", 32, 0, tmp_path, progress=False)
    assert data.images.shape == (60000, 1, 32, 32) and data.channels == 1
    assert data.labels.shape == (60000,) and set(np.unique(data.labels)) == set(range(10))
    counts = data.label_counts()
    assert counts["Ankle boot"] == 6000 and sum(counts.values()) == 60000 and len(counts) == 10
    # the 28x28 originals sit on black: the upscaled corners stay dark, the centres are bright on average
    assert data.images[:1000, 0, :2, :2].mean() < 5
    assert data.images[:1000, 0, 12:20, 12:20].mean() > 60
    test_split = load_image_data("fashion-mnist", 32, 0, tmp_path, split="test", progress=False)
    assert len(test_split) == 10000
