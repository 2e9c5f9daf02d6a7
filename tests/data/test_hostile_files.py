"""Files that once stopped or overloaded a run: names that are not UTF-8, thin strips of pixels, and the partial
cache files of builds that were killed or interrupted."""

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from dcgan.data import cache as cache_module
from dcgan.data import decode as decode_module
from dcgan.data import sources as sources_module
from dcgan.data.cache import host_tag, load_image_data, remove_dead_partials
from dcgan.data.decode import MAX_ASPECT, printable
from dcgan.data.transforms import fit_square, image_to_array
from dcgan.errors import UserError
from dcgan.files import process_alive

GOOD = (90, 140, 200)
LATIN_1_NAME = b"caf\xe9.png"  # "café.png" in Latin-1: not valid UTF-8
ELONGATED = f"aspect ratio over {MAX_ASPECT}:1"


def write_good(folder, count=2):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (40, 30), GOOD).save(folder / f"good_{i}.png")


def write_latin_1_png(folder, colour=(250, 10, 10), name=LATIN_1_NAME):
    """An image whose file name is the bytes `name`; skips the test where the file system refuses such names."""
    path = os.path.join(os.fsencode(str(folder)), name)
    try:
        with open(path, "wb") as handle:
            Image.new("RGB", (40, 30), colour).save(handle, format="PNG")
    except OSError as error:
        pytest.skip(f"this file system refuses names that are not UTF-8 ({error})")
    return os.fsdecode(path)


def load(folder, tmp_path, channels=0):
    return load_image_data(str(folder), 32, channels, tmp_path / "data", download=False, progress=False)


def print_strictly(text: str) -> str:
    """Print to a stream that refuses anything UTF-8 cannot encode (as a pipe or a log file would); return it."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    print(text, file=stream)
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8")


# --- names that are not UTF-8 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker processes"])
def test_a_file_named_in_latin_1_is_read_like_any_other(tmp_path, monkeypatch, workers):
    folder = tmp_path / "images"
    write_good(folder, count=1)
    write_latin_1_png(folder)
    if workers > 1:
        monkeypatch.setattr(decode_module, "PARALLEL_FROM", 1)
        monkeypatch.setattr(sources_module, "default_workers", lambda: workers)
    data = load(folder, tmp_path)
    assert len(data) == 2 and data.skipped == {} and data.files_seen == 2
    # "caf\xe9.png" sorts before "good_0.png"
    assert [tuple(int(v) for v in image[:, 16, 16]) for image in data.images] == [(250, 10, 10), GOOD]
    assert "2 images at 32x32, 3 channels" in print_strictly(data.summary())


def test_files_whose_names_differ_only_in_bytes_that_are_not_utf_8_have_their_own_cache(tmp_path):
    folder = tmp_path / "images"
    write_good(folder, count=1)
    path = write_latin_1_png(folder, colour=(250, 10, 10))
    first = load(folder, tmp_path)
    os.rename(path, os.path.join(os.fsencode(str(folder)), b"caf\xe8.png"))
    second = load(folder, tmp_path)
    assert second.cache_file != first.cache_file and len(second) == 2


def test_a_folder_named_in_latin_1_prints_in_the_summary_and_errors(tmp_path):
    folder = os.path.join(os.fsencode(str(tmp_path)), b"d\xe9j\xe0")
    try:
        os.mkdir(folder)
    except OSError as error:
        pytest.skip(f"this file system refuses names that are not UTF-8 ({error})")
    folder = os.fsdecode(folder)
    write_latin_1_png(folder)
    with open(os.path.join(folder, "broken.png"), "wb") as handle:
        handle.write(b"not a png")
    data = load(folder, tmp_path)
    assert len(data) == 1 and data.skipped == {"not an image": 1}
    printed = print_strictly(data.summary())
    assert "d\\xe9j\\xe0: 1 images" in printed and "skipped 1 of 2 files: 1 not an image" in printed

    os.remove(os.path.join(os.fsencode(folder), LATIN_1_NAME))
    with pytest.raises(UserError, match="none of the 1 image files") as error:
        load(folder, tmp_path)
    assert "d\\xe9j\\xe0" in print_strictly(str(error.value))


def test_printable_shows_the_bytes_that_are_not_utf_8():
    assert printable(os.fsdecode(b"/data/caf\xe9.png")) == "/data/caf\\xe9.png"
    assert printable("/data/café.png") == "/data/café.png"  # valid UTF-8 is left as it is


# --- elongated images -----------------------------------------------------------------------------------------------

def write_strip(path, width, height):
    Image.new("L", (width, height), 255).save(path)


def test_images_over_8_to_1_are_skipped_with_their_reason(tmp_path):
    folder = tmp_path / "images"
    write_good(folder)
    write_strip(folder / "a_strip.png", 1, 300_000)  # under Pillow's pixel limit, ~1.6 GB once upscaled to 32 wide
    write_strip(folder / "b_banner.png", 30_000, 1)
    write_strip(folder / "c_just_8_to_1.png", 256, 32)  # the limit itself is kept
    assert (folder / "a_strip.png").stat().st_size < 2000 and 300_000 < Image.MAX_IMAGE_PIXELS
    data = load(folder, tmp_path, channels=3)
    assert data.skipped == {ELONGATED: 2} and data.files_seen == 5 and len(data) == 3
    assert (data.images[0] == 255).all()  # the 8:1 image, centre-cropped
    assert (data.images[1:] == np.array(GOOD, dtype=np.uint8)[:, None, None]).all()
    assert f"skipped 2 of 5 files: 2 {ELONGATED}" in data.summary()


def test_resizing_an_elongated_image_builds_nothing_larger_than_the_output(monkeypatch):
    requested = []
    resize = Image.Image.resize

    def recorded(image, size, *args, **kwargs):
        requested.append(tuple(size))
        return resize(image, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recorded)
    array = image_to_array(Image.new("L", (1, 30_000), 7), 32, 1)
    assert array.shape == (1, 32, 32) and (array == 7).all()
    assert requested and all(width * height <= 32 * 32 for width, height in requested)


def test_fit_square_keeps_the_centre_of_a_wide_image():
    image = Image.new("RGB", (90, 30), (255, 0, 0))
    image.paste((0, 255, 0), (30, 0, 60, 30))  # thirds: red, green, red
    square = np.asarray(fit_square(image, 32))
    assert square.shape == (32, 32, 3)
    assert (square[:, 2:30] == (0, 255, 0)).all()  # only the green middle third, away from the blurred edges


# --- partial cache files ------------------------------------------------------------------------------------------

def dead_pid() -> int:
    pid = 2**22 + 12345  # above Linux's largest PID (2**22)
    assert not process_alive(pid)
    return pid


def fake_partials(cache_dir):
    """Partial files of a dead build here (new and old naming), a live build here, and a build elsewhere."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    names = {
        "dead": f"folder-0123456789-32px-3ch.u8.{host_tag()}.{dead_pid()}.partial",
        "dead, named without a host": f"folder-0123456789-32px-3ch.u8.{dead_pid()}.partial",
        "live": f"folder-0123456789-64px-3ch.u8.{host_tag()}.{os.getpid()}.partial",
        "other machine": f"folder-0123456789-32px-1ch.u8.elsewhere-{host_tag()}.{dead_pid()}.partial",
    }
    for name in names.values():
        (cache_dir / name).write_bytes(b"\0" * 100)
    return {why: cache_dir / name for why, name in names.items()}


def test_a_build_removes_the_partials_of_dead_builds_and_keeps_live_ones(tmp_path):
    write_good(tmp_path / "images")
    partials = fake_partials(tmp_path / "data" / ".cache")
    data = load(tmp_path / "images", tmp_path)
    assert len(data) == 2
    assert not partials["dead"].exists() and not partials["dead, named without a host"].exists()
    assert partials["live"].exists() and partials["other machine"].exists()


def test_loading_a_valid_cache_removes_dead_partials_too(tmp_path, monkeypatch):
    write_good(tmp_path / "images")
    load(tmp_path / "images", tmp_path)
    partials = fake_partials(tmp_path / "data" / ".cache")
    monkeypatch.setattr(cache_module, "build_cache", lambda *args, **kwargs: pytest.fail("rebuilt a valid cache"))
    load(tmp_path / "images", tmp_path)
    assert not partials["dead"].exists() and partials["live"].exists()


def test_removing_partials_copes_with_a_missing_cache_folder(tmp_path):
    assert remove_dead_partials(tmp_path / "no such folder") == []


class FromSignalHandler(BaseException):
    """What a signal handler raises: not an Exception, so that no `except Exception` catches it."""


def interrupted_by_a_signal_handler(paths, size, channels, workers):
    """Decoding that yields one image, then is stopped by a signal handler raising."""
    yield np.zeros((channels, size, size), dtype=np.uint8), None

    def handler(signum, frame):
        raise FromSignalHandler("SIGUSR1")

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        signal.raise_signal(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    yield np.zeros((channels, size, size), dtype=np.uint8), None


def test_a_build_stopped_by_a_signal_handler_leaves_no_partial(tmp_path, monkeypatch):
    write_good(tmp_path / "images")
    monkeypatch.setattr(sources_module, "decoded_stream", interrupted_by_a_signal_handler)
    with pytest.raises(FromSignalHandler):
        load(tmp_path / "images", tmp_path, channels=3)
    assert list((tmp_path / "data" / ".cache").iterdir()) == []


def test_ctrl_c_while_writing_leaves_no_partial_and_stops_decoding(tmp_path, monkeypatch):
    write_good(tmp_path / "images")
    decoding = {"stopped": False}

    def endless(paths, size, channels, workers):
        try:
            while True:
                yield np.zeros((channels, size, size), dtype=np.uint8), None
        finally:
            decoding["stopped"] = True

    def interrupted(results, out):
        for array, _ in results:
            out.write(np.ascontiguousarray(array).tobytes())
            raise KeyboardInterrupt

    monkeypatch.setattr(sources_module, "decoded_stream", endless)
    monkeypatch.setattr(cache_module, "write_decoded", interrupted)
    with pytest.raises(KeyboardInterrupt) as interrupted:  # with a progress bar, which does not close what it wraps
        load_image_data(str(tmp_path / "images"), 32, 3, tmp_path / "data", progress=True)
    assert list((tmp_path / "data" / ".cache").iterdir()) == []
    # stopped already, while the traceback (as a notebook keeps it) still holds the decoding generator
    assert decoding["stopped"] and interrupted.tb is not None


STALLED_BUILD = """
import sys, time
from pathlib import Path
from dcgan.data import sources
from dcgan.data.cache import load_image_data

def stalled(paths, size, channels, workers):
    time.sleep(600)
    yield

sources.decoded_stream = stalled
load_image_data(sys.argv[1], 32, 3, Path(sys.argv[2]), progress=False)
"""


def test_the_partial_of_a_build_killed_with_sigkill_is_removed_by_the_next_load(tmp_path):
    write_good(tmp_path / "images")
    cache_dir = tmp_path / "data" / ".cache"
    child = subprocess.Popen([sys.executable, "-c", STALLED_BUILD, str(tmp_path / "images"),
                              str(tmp_path / "data")])
    try:
        deadline = time.monotonic() + 120
        while not list(cache_dir.glob("*.partial")) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        left = list(cache_dir.glob("*.partial"))
        assert len(left) == 1 and left[0].name.endswith(f".{child.pid}.partial")
        load(tmp_path / "images", tmp_path, channels=0)  # a build beside a live one keeps its partial
        assert left[0].exists()
    finally:
        child.kill()
        child.wait()
    assert left[0].exists()  # SIGKILL: nothing ran to remove it
    data = load(tmp_path / "images", tmp_path, channels=3)
    assert len(data) == 2 and not left[0].exists()
