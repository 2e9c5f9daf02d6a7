"""Real batches: kept on the device or streamed from the cache, the same images in the same order either way."""

import pytest
import torch

from dcgan.data.batches import DeviceBatches, StreamedBatches, batch_source, epoch_plan, fits_on_device
from dcgan.data.cache import load_image_data
from dcgan.data.transforms import to_signed

CPU = torch.device("cpu")


@pytest.fixture
def shapes(tmp_path):
    return load_image_data("synthetic", 32, 3, tmp_path, progress=False).head(300)


def test_an_epoch_plan_repeats_with_its_seed_and_drops_the_last_partial_batch():
    order, coins = epoch_plan(300, 4, 64, True, torch.Generator().manual_seed(3))
    again, same_coins = epoch_plan(300, 4, 64, True, torch.Generator().manual_seed(3))
    assert torch.equal(order, again) and torch.equal(coins, same_coins)
    assert len(order) == 256 and len(set(order.tolist())) == 256 and coins.dtype == torch.bool
    assert 0.35 < coins.float().mean() < 0.65
    assert epoch_plan(300, 4, 64, False, torch.Generator().manual_seed(3))[1] is None


@pytest.mark.parametrize("source", ["device", "streamed", "streamed-workers"])
def test_batches_hold_the_planned_images_flipped_where_the_coin_says(shapes, source):
    order, coins = epoch_plan(len(shapes), 4, 64, True, torch.Generator().manual_seed(0))
    batches = {"device": lambda: DeviceBatches(shapes, CPU, channels_last=False),
               "streamed": lambda: StreamedBatches(shapes, CPU, channels_last=False),
               "streamed-workers": lambda: StreamedBatches(shapes, CPU, channels_last=False, workers=2)}[source]()
    produced = list(batches.epoch(order, coins, 64))
    assert len(produced) == 4 and all(batch.shape == (64, 3, 32, 32) for batch in produced)
    expected = to_signed(torch.from_numpy(shapes.images[order.numpy()]))
    expected = torch.where(coins.view(-1, 1, 1, 1), expected.flip(-1), expected)
    assert torch.equal(torch.cat(produced), expected)


def test_channels_last_batches_keep_their_values(shapes):
    order, _ = epoch_plan(len(shapes), 2, 32, False, torch.Generator().manual_seed(0))
    plain = next(DeviceBatches(shapes, CPU, channels_last=False).epoch(order, None, 32))
    nhwc = next(DeviceBatches(shapes, CPU, channels_last=True).epoch(order, None, 32))
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(plain, nhwc)


def test_placement_follows_the_setting(shapes):
    assert fits_on_device(shapes, CPU)  # 300 small images fit in a quarter of any RAM
    assert isinstance(batch_source(shapes, CPU, "auto", False), DeviceBatches)
    assert isinstance(batch_source(shapes, CPU, "on", False), DeviceBatches)
    assert isinstance(batch_source(shapes, CPU, "off", False), StreamedBatches)
