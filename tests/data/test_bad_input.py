"""Image folders with awkward and broken files: each file is converted correctly or skipped with a reason, and the
run ends with one summary line counting the skipped files by reason."""

import os
import signal
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from dcgan.data import cache as cache_module
from dcgan.data.cache import load_image_data
from dcgan.data.decode import PARALLEL_FROM

GOOD = (90, 140, 200)  # the colour of the good images next to each case (grey 90 in 1-channel runs)


def write_good(folder, count=2, mode="RGB"):
    """Good images good_0.png, good_1.png ...: they sort after the case files, named case*."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new(mode, (40, 30), GOOD if mode == "RGB" else GOOD[0]).save(folder / f"good_{i}.png")


def load(folder, tmp_path, channels=3):
    return load_image_data(str(folder), 32, channels, tmp_path / "data", progress=False)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes = b"") -> bytes:
    """A PNG written byte by byte, its IHDR declaring any size (with a valid CRC) whatever the data holds."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


def noisy_jpeg(path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so that no `except Exception` on the way swallows it."""


@pytest.fixture
def no_hang():
    """Fail, instead of waiting forever, when a test blocks (opening a FIFO blocks until someone writes to it)."""
    def hung(signum, frame):
        raise Hung("blocked for 60 s: a FIFO was opened for reading?")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# --- converted: the pixel values come out right --------------------------------------------------------------------

def sixteen_bit_gray(folder):
    Image.fromarray(np.full((30, 40), 13107, dtype=np.uint16)).save(folder / "case.png")  # "I;16", 20 % of 65535


def sixteen_bit_rgb(folder):
    pixel = struct.pack(">HHH", 0x3344, 0x66FF, 0xCC00)  # Pillow keeps the high byte of each channel
    rows = (b"\0" + pixel * 12) * 9
    (folder / "case.png").write_bytes(raw_png(12, 9, 16, 2, rows))


def cmyk_red(folder):
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(folder / "case.jpg", quality=95)


def cmyk_mixed(folder):
    Image.new("CMYK", (40, 30), (200, 50, 0, 30)).save(folder / "case.jpg", quality=95)


def palette(folder):
    image = Image.new("P", (40, 30), 1)
    image.putpalette([0, 0, 0, 10, 200, 30])
    image.save(folder / "case.png")


def palette_transparent(folder):
    image = Image.new("P", (40, 30), 1)
    image.putpalette([0, 0, 0, 10, 200, 30])
    image.save(folder / "case.png", transparency=1)


def rgba_opaque(folder):
    Image.new("RGBA", (40, 30), (10, 20, 30, 255)).save(folder / "case.png")


def rgba_half_transparent(folder):
    Image.new("RGBA", (40, 30), (0, 255, 0, 128)).save(folder / "case.png")


def rgba_transparent(folder):
    Image.new("RGBA", (40, 30), (200, 10, 10, 0)).save(folder / "case.png")


def grey_in_colour_run(folder):
    Image.new("L", (40, 30), 77).save(folder / "case.png")


def bilevel_in_colour_run(folder):
    Image.new("1", (40, 30), 1).save(folder / "case.png")


def grey_alpha_in_grey_run(folder):
    Image.new("LA", (40, 30), (100, 0)).save(folder / "case.png")  # fully transparent: white


def smaller_than_target(folder):
    Image.new("RGB", (10, 7), (12, 34, 56)).save(folder / "case.png")


def one_pixel_jpeg(folder):
    Image.new("RGB", (1, 1), (250, 120, 0)).save(folder / "case.jpg", quality=100)


# (writer, channels asked for (0: the folder's own), channels of the good images, expected pixel, tolerance)
CONVERTED = {
    "16-bit grey PNG scaled, not clipped to white": (sixteen_bit_gray, 1, "L", (51,), 0),
    "16-bit grey PNG in a colour run": (sixteen_bit_gray, 3, "RGB", (51, 51, 51), 0),
    "16-bit RGB PNG": (sixteen_bit_rgb, 3, "RGB", (0x33, 0x66, 0xCC), 0),
    "CMYK JPEG, red": (cmyk_red, 0, "RGB", (255, 0, 0), 6),
    "CMYK JPEG, mixed": (cmyk_mixed, 0, "RGB", (49, 181, 225), 6),  # (255 - C) * (255 - K) / 255
    "palette PNG": (palette, 0, "RGB", (10, 200, 30), 0),
    "palette PNG, transparent entry onto white": (palette_transparent, 0, "RGB", (255, 255, 255), 0),
    "RGBA PNG, opaque": (rgba_opaque, 0, "RGB", (10, 20, 30), 0),
    "RGBA PNG, half transparent onto white": (rgba_half_transparent, 0, "RGB", (127, 255, 127), 1),
    "RGBA PNG, transparent onto white": (rgba_transparent, 0, "RGB", (255, 255, 255), 0),
    "grey image in a colour run": (grey_in_colour_run, 0, "RGB", (77, 77, 77), 0),
    "1-bit image in a colour run": (bilevel_in_colour_run, 0, "RGB", (255, 255, 255), 0),
    "grey+alpha image in a grey run": (grey_alpha_in_grey_run, 0, "L", (255,), 0),
    "10x7 image upscaled": (smaller_than_target, 0, "RGB", (12, 34, 56), 1),
    "1x1 JPEG upscaled": (one_pixel_jpeg, 0, "RGB", (250, 120, 0), 6),
}


@pytest.mark.parametrize("case", CONVERTED)
def test_awkward_images_are_converted_to_the_right_pixels(tmp_path, case):
    write, channels, good_mode, expected, tolerance = CONVERTED[case]
    folder = tmp_path / "images"
    write_good(folder, mode=good_mode)
    write(folder)
    data = load(folder, tmp_path, channels)
    assert len(data) == 3 and data.skipped == {} and data.files_seen == 3
    assert data.images.shape == (3, len(expected), 32, 32)
    converted = data.images[0].astype(int)  # case.* sorts before good_*
    for channel, value in enumerate(expected):
        assert np.abs(converted[channel] - value).max() <= tolerance, (channel, np.unique(converted[channel]))
    good = GOOD if len(expected) == 3 else GOOD[:1]
    assert [int(v) for v in data.images[1, :, 16, 16]] == list(good)  # the neighbours are untouched


def test_a_small_image_is_upscaled_with_its_left_and_right_halves_in_place(tmp_path):
    folder = tmp_path / "images"
    write_good(folder)
    image = Image.new("RGB", (10, 7), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 5, 7))  # left half red
    image.save(folder / "case.png")
    converted = load(folder, tmp_path).images[0]
    assert converted.shape == (3, 32, 32)
    assert tuple(converted[:, 16, 2]) == (255, 0, 0) and tuple(converted[:, 16, 29]) == (0, 0, 255)


def test_grayscale_with_a_16_bit_image_stays_one_channel(tmp_path):
    folder = tmp_path / "images"
    write_good(folder, mode="L")
    sixteen_bit_gray(folder)
    data = load(folder, tmp_path, channels=0)
    assert data.channels == 1 and int(data.images[0, 0, 16, 16]) == 51


# --- skipped: the reason is exact ----------------------------------------------------------------------------------

def truncated_jpeg(folder):
    noisy_jpeg(folder / "case.jpg")
    cut_in_half(folder / "case.jpg")


def truncated_png(folder):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "case.png")
    cut_in_half(folder / "case.png")


def text_named_jpg(folder):
    (folder / "case.jpg").write_text("a text file with an image name\n")


def text_named_png(folder):
    (folder / "case.png").write_text("a text file with an image name\n")


def huge_declared_size(folder):
    (folder / "case.png").write_bytes(raw_png(60000, 60000, 8, 0))  # 3.6 billion pixels declared in 65 bytes


def declared_size_just_over_the_limit(folder):
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)  # over MAX_IMAGE_PIXELS, under twice it: Pillow only warns
    assert Image.MAX_IMAGE_PIXELS < side * side < 2 * Image.MAX_IMAGE_PIXELS
    (folder / "case.png").write_bytes(raw_png(side, side, 8, 0))


def zero_bytes_png(folder):
    (folder / "case.png").write_bytes(b"")


def zero_bytes_jpg(folder):
    (folder / "case.jpg").write_bytes(b"")


def dangling_symlink(folder):
    (folder / "case.jpg").symlink_to("missing.jpg")


def symlink_loop(folder):
    (folder / "case_a.png").symlink_to("case_b.png")
    (folder / "case_b.png").symlink_to("case_a.png")


def fifo(folder):
    os.mkfifo(folder / "case_pipe.png")


# (writer, files written, the reason they are skipped for)
SKIPPED = {
    "truncated JPEG": (truncated_jpeg, 1, "corrupt or truncated"),
    "truncated PNG": (truncated_png, 1, "corrupt or truncated"),
    "text file named .jpg": (text_named_jpg, 1, "not an image"),
    "text file named .png": (text_named_png, 1, "not an image"),
    "decompression bomb": (huge_declared_size, 1, "too many pixels (decompression bomb)"),
    "decompression bomb, warning size": (declared_size_just_over_the_limit, 1, "too many pixels (decompression bomb)"),
    "zero-byte PNG": (zero_bytes_png, 1, "empty file"),
    "zero-byte JPEG": (zero_bytes_jpg, 1, "empty file"),
    "dangling symlink": (dangling_symlink, 1, "unreadable"),
    "symlink loop": (symlink_loop, 2, "unreadable"),
    "FIFO": (fifo, 1, "not a regular file"),
}


@pytest.mark.parametrize("case", SKIPPED)
@pytest.mark.parametrize("channels", [0, 3])  # 0: the folder's channels are detected first, opening files too
def test_bad_files_are_skipped_with_their_reason(tmp_path, no_hang, case, channels):
    write, count, reason = SKIPPED[case]
    folder = tmp_path / "images"
    write_good(folder)
    write(folder)
    data = load(folder, tmp_path, channels)
    assert data.skipped == {reason: count} and data.files_seen == 2 + count
    assert len(data) == 2 and data.channels == 3
    assert (data.images == np.array(GOOD, dtype=np.uint8)[:, None, None]).all()  # no half-grey leftovers
    assert f"; skipped {count} of {2 + count} files: {count} {reason}" in data.summary()


def test_the_decompression_bomb_is_a_small_file(tmp_path):
    huge_declared_size(tmp_path)
    assert (tmp_path / "case.png").stat().st_size < 100


def test_truncated_files_are_skipped_even_where_pillow_was_told_to_load_them(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what many notebooks do
    folder = tmp_path / "images"
    write_good(folder)
    truncated_jpeg(folder)
    data = load(folder, tmp_path)
    assert data.skipped == {"corrupt or truncated": 1} and len(data) == 2
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_unreadable(tmp_path):
    folder = tmp_path / "images"
    write_good(folder)
    locked = folder / "case.png"
    Image.new("RGB", (40, 30)).save(locked)
    locked.chmod(0)
    try:
        data = load(folder, tmp_path)
    finally:
        locked.chmod(0o644)
    assert data.skipped == {"unreadable": 1} and len(data) == 2


def test_a_symlinked_folder_looping_to_its_parent_is_not_walked(tmp_path, no_hang):
    folder = tmp_path / "images"
    write_good(folder / "sub")
    (folder / "sub" / "loop").symlink_to("..")
    (folder / "sub" / "self").symlink_to(".")
    data = load(folder, tmp_path)
    assert len(data) == 2 and data.files_seen == 2 and data.skipped == {}


# --- everything at once ------------------------------------------------------------------------------------------

def write_every_case(folder):
    """Each converted and each skipped case in its own subfolder; returns the skip reasons counted."""
    expected = {}
    for number, (write, *_) in enumerate(CONVERTED.values()):
        (folder / f"converted_{number:02d}").mkdir(parents=True)
        write(folder / f"converted_{number:02d}")
    for number, (write, count, reason) in enumerate(SKIPPED.values()):
        (folder / f"skipped_{number:02d}").mkdir(parents=True)
        write(folder / f"skipped_{number:02d}")
        expected[reason] = expected.get(reason, 0) + count
    (folder / "converted_00" / "loop").symlink_to("..")
    return expected


@pytest.mark.parametrize("good", [2, PARALLEL_FROM], ids=["in-process", "worker-processes"])
def test_a_folder_of_every_case_ends_in_one_summary_line(tmp_path, no_hang, monkeypatch, good):
    folder = tmp_path / "images"
    write_good(folder, good)
    expected = write_every_case(folder)
    skipped, seen = sum(expected.values()), good + len(CONVERTED) + sum(expected.values())
    assert expected == {"corrupt or truncated": 2, "not an image": 2, "too many pixels (decompression bomb)": 2,
                        "empty file": 2, "unreadable": 3, "not a regular file": 1}
    data = load(folder, tmp_path, channels=0)
    assert len(data) == good + len(CONVERTED) and data.channels == 3
    assert data.skipped == expected and data.files_seen == seen
    reasons = ", ".join(f"{count} {why}" for why, count in sorted(expected.items()))
    assert data.summary() == (f"{folder}: {len(data):,} images at 32x32, 3 channels; "
                              f"skipped {skipped} of {seen:,} files: {reasons}")
    assert data.summary().count("\n") == 0

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although nothing changed")

    monkeypatch.setattr(cache_module, "build_cache", no_decoding)
    assert load(folder, tmp_path, channels=0).skipped == expected  # the cache key copes with every case
