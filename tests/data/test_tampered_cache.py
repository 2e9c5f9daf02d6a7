"""A decoded cache altered on disk (its description rewritten to fit its bytes, fields garbled, files swapped for
links, FIFOs or files of the wrong length) is rebuilt from the source, never used, and the run says so in one line."""

import io
import json
import os
import shutil
import threading
import zlib

import numpy as np
import pytest

from dcgan.data import cache as cache_module
from dcgan.data.cache import StaleCache, load_image_data, npy_bytes
from dcgan.data.sources import SyntheticSource

SIZE = 32


def load(data_dir):
    return load_image_data("synthetic", SIZE, 0, data_dir, progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A synthetic cache built once: its data folder, images, labels and description."""
    data_dir = tmp_path_factory.mktemp("reference") / "data"
    data = load(data_dir)
    meta = json.loads(data.cache_file.with_suffix(".json").read_text())
    return data_dir, np.array(data.images), np.array(data.labels), meta


@pytest.fixture
def cache(tmp_path, reference):
    """A copy of the reference cache for one test to alter: (data folder, images file, labels file, json file)."""
    data_dir = tmp_path / "data"
    shutil.copytree(reference[0], data_dir)
    images_file = next((data_dir / ".cache").glob("*.u8"))
    return data_dir, images_file, images_file.with_suffix(".labels.npy"), images_file.with_suffix(".json")


def write_meta(meta_file, meta):
    meta_file.write_text(json.dumps(meta))


def assert_rebuilt(data_dir, reference, capsys):
    """Loading again gives a fresh decode of the asked shape, described again, and one line on stderr saying so."""
    _, images, labels, meta = reference
    data = load(data_dir)
    assert data.images.shape == (len(images), 3, SIZE, SIZE)
    assert np.array_equal(data.images, images) and np.array_equal(data.labels, labels)
    assert json.loads(data.cache_file.with_suffix(".json").read_text()) == meta
    assert "skipped" not in data.summary()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("the image cache ") and "decoding synthetic shapes again" in lines[0]
    assert load(data_dir).images.shape == images.shape and capsys.readouterr().err == ""  # now used as it is


@pytest.mark.parametrize("channels, size", [(1, SIZE), (3, SIZE // 2)])
def test_a_description_rewritten_to_another_shape_that_fits_the_bytes_is_not_used(cache, reference, capsys,
                                                                                   channels, size):
    data_dir, images_file, labels_file, meta_file = cache
    meta = reference[3]
    count = images_file.stat().st_size // (channels * size * size)
    assert count * channels * size * size == images_file.stat().st_size  # the bytes fit the new shape exactly
    labels_bytes = npy_bytes(np.zeros(count, dtype=np.int64))  # labels to match, checksummed: only the shape tells
    labels_file.write_bytes(labels_bytes)
    write_meta(meta_file, {**meta, "shape": [count, channels, size, size], "files_seen": count,
                           "crc32": {**meta["crc32"], "labels": zlib.crc32(labels_bytes)}})
    with pytest.raises(StaleCache, match=f"{channels}-channel {size}x{size} images, not the 3-channel 32x32"):
        cache_module.load_cached(meta_file.parent, meta_file.stem, SyntheticSource(), SIZE, 3)
    assert_rebuilt(data_dir, reference, capsys)


GARBLED = {
    "skipped a string": lambda m: {**m, "skipped": "a, b"},
    "skipped a list": lambda m: {**m, "skipped": [["corrupt", 1]]},
    "skipped counts as strings": lambda m: {**m, "skipped": {"corrupt": "1"}, "files_seen": m["files_seen"] + 1},
    "skipped count a bool": lambda m: {**m, "skipped": {"corrupt": True}, "files_seen": m["files_seen"] + 1},
    "skipped count negative": lambda m: {**m, "skipped": {"corrupt": -1}, "files_seen": m["files_seen"] - 1},
    "skipped reason not a string": lambda m: {**m, "skipped": {"1": 1, "2": [1]}},
    "files seen a float": lambda m: {**m, "files_seen": float(m["files_seen"])},
    "files seen inconsistent": lambda m: {**m, "files_seen": m["files_seen"] + 5},
    "count negative": lambda m: {**m, "shape": [-m["shape"][0], *m["shape"][1:]]},
    "count a bool": lambda m: {**m, "shape": [True, *m["shape"][1:]]},
    "shape too short": lambda m: {**m, "shape": m["shape"][1:]},
    "labelled not a bool": lambda m: {**m, "labelled": 1},
    "unlabelled": lambda m: {**m, "labelled": False},
    "classes of the wrong length": lambda m: {**m, "classes": m["classes"][:-1]},
    "classes not strings": lambda m: {**m, "classes": list(range(len(m["classes"])))},
    "another source": lambda m: {**m, "source": "fashion-mnist (train)"},
    "checksum a string": lambda m: {**m, "crc32": {**m["crc32"], "images": str(m["crc32"]["images"])}},
    "a missing field": lambda m: {key: value for key, value in m.items() if key != "classes"},
    "an extra field": lambda m: {**m, "note": "hello"},
    "a list": lambda m: [m],
    "null": lambda m: None,
    "a number": lambda m: 3,
}


@pytest.mark.parametrize("damage", GARBLED)
def test_a_garbled_description_is_rebuilt(cache, reference, capsys, damage):
    data_dir, _, _, meta_file = cache
    write_meta(meta_file, GARBLED[damage](reference[3]))
    assert_rebuilt(data_dir, reference, capsys)


def load_within(data_dir, seconds=60):
    """Load in a thread, failing the test (instead of hanging it) when that takes longer than `seconds`."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(data=load(data_dir)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "loading the cache hangs"
    return result["data"]


@pytest.mark.parametrize("part", ["labels", "images"])
@pytest.mark.parametrize("how", ["a link to a FIFO", "a FIFO"])
def test_a_cache_file_that_is_a_fifo_does_not_hang_the_load(cache, reference, capsys, tmp_path, part, how):
    data_dir, images_file, labels_file, _ = cache
    target = images_file if part == "images" else labels_file
    target.unlink()
    if how == "a FIFO":
        os.mkfifo(target)
    else:
        os.mkfifo(tmp_path / "fifo")
        target.symlink_to(tmp_path / "fifo")
    data = load_within(data_dir)
    assert np.array_equal(data.images, reference[1]) and np.array_equal(data.labels, reference[2])
    assert not target.is_symlink() and target.is_file()  # replaced by a regular file
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"its {part} file: it is" in lines[0]


@pytest.mark.parametrize("part", ["labels", "images"])
def test_a_cache_file_that_links_to_a_good_copy_is_not_followed(cache, reference, capsys, tmp_path, part):
    data_dir, images_file, labels_file, _ = cache
    target = images_file if part == "images" else labels_file
    copy = tmp_path / "copy"
    shutil.copy(target, copy)
    target.unlink()
    target.symlink_to(copy)
    assert_rebuilt(data_dir, reference, capsys)
    assert not target.is_symlink()


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_a_labels_file_of_the_wrong_length_is_rebuilt(cache, reference, capsys, change):
    data_dir, _, labels_file, meta_file = cache
    raw = labels_file.read_bytes()
    raw = raw + npy_bytes(np.zeros(3, dtype=np.int64)) if change == "longer" else raw[:-8]
    labels_file.write_bytes(raw)
    meta = reference[3]
    write_meta(meta_file, {**meta, "crc32": {**meta["crc32"], "labels": zlib.crc32(raw)}})  # only the length tells
    assert_rebuilt(data_dir, reference, capsys)


def test_labels_that_are_not_class_indices_are_rebuilt(cache, reference, capsys):
    data_dir, _, labels_file, meta_file = cache
    labels = np.load(io.BytesIO(labels_file.read_bytes()))
    labels[0] = len(reference[3]["classes"])
    raw = npy_bytes(labels)
    labels_file.write_bytes(raw)
    meta = reference[3]
    write_meta(meta_file, {**meta, "crc32": {**meta["crc32"], "labels": zlib.crc32(raw)}})
    assert_rebuilt(data_dir, reference, capsys)
