import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.data.batches import epoch_plan
from dcgan.data.transforms import fit_square, image_to_array, mirror_where, to_channels, to_signed, to_unit


def test_uint8_to_signed_and_back_is_exact():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    signed = to_signed(pixels)
    assert signed.min() == -1.0 and signed.max() == 1.0
    assert signed.dtype == torch.float32
    back = (to_unit(signed) * 255).round().to(torch.uint8)
    assert torch.equal(back, pixels)


def test_to_unit_clamps_out_of_range_values():
    assert torch.equal(to_unit(torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0])), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


@pytest.mark.parametrize("width,height", [(200, 100), (100, 200), (64, 64), (20, 30)])
def test_fit_square_resizes_shorter_side_then_crops_the_centre(width, height):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L")
    square = fit_square(image, 32)
    assert square.size == (32, 32)
    # reference: crop the centre square of the original first, then resize it
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    expected = image.crop((left, top, left + side, top + side)).resize((32, 32), Image.Resampling.BICUBIC)
    difference = np.abs(np.asarray(square, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() < 12  # resampling at another stage blurs a little; a wrong crop differs by ~85


def test_image_to_array_layout_and_channels():
    rgb = Image.new("RGB", (40, 40), (10, 20, 30))
    array = image_to_array(rgb, 32, 3)
    assert array.shape == (3, 32, 32) and array.dtype == np.uint8
    assert tuple(array[:, 5, 5]) == (10, 20, 30)
    gray = image_to_array(rgb, 32, 1)
    assert gray.shape == (1, 32, 32)
    assert image_to_array(Image.new("L", (8, 8), 77), 32, 3).shape == (3, 32, 32)


def test_16_bit_images_are_scaled_not_clipped():
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)  # mode I;16
    assert image.mode.startswith("I")
    assert list(np.asarray(to_channels(image, 1))[0]) == [0, 128, 255]


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    image.putpixel((1, 0), (0, 0, 0, 0))
    array = np.asarray(to_channels(image, 3))
    assert tuple(array[0, 0]) == (255, 0, 0) and tuple(array[0, 1]) == (255, 255, 255)


def random_flip(images, generator):
    """The flips of training: an epoch's coins (batches.epoch_plan), applied by mirror_where."""
    _, coins = epoch_plan(len(images), 1, len(images), True, generator)
    return mirror_where(images, coins)


def test_random_flip_mirrors_about_half_and_repeats_with_the_seed():
    images = torch.arange(4.0).repeat(1000, 1, 1, 1)  # each image: one row 0 1 2 3
    flipped = random_flip(images, torch.Generator().manual_seed(0))
    mirrored = (flipped[:, 0, 0, 0] == 3).float()
    assert 0.4 < mirrored.mean() < 0.6
    unchanged = flipped[mirrored == 0]
    assert torch.equal(unchanged, images[: len(unchanged)])
    assert torch.equal(flipped[mirrored == 1][0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))
    again = random_flip(images, torch.Generator().manual_seed(0))
    assert torch.equal(flipped, again)
