"""Real batches for the training loop.

The order and the flip coins of an epoch are drawn on the CPU from the run's data generator (so a seed gives the
same batches on every device) and sent to the device once per epoch. Then each batch is either
- gathered on the device from the whole uint8 dataset kept there (`DeviceBatches`: no host work, no sync), or
- read from the memory-mapped cache by DataLoader workers into pinned memory and copied asynchronously
  (`StreamedBatches`, for datasets too big for the device),
and mapped to [-1, 1], flipped and given the memory layout the networks use, on the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from .cache import ImageData
from .transforms import mirror_where, to_signed

GPU_SHARE, RAM_SHARE = 0.5, 0.25  # auto keeps the data on the device when it takes at most this share


def fits_on_device(data: ImageData, device: torch.device) -> bool:
    """Whether the decoded dataset takes at most half the free GPU memory (a quarter of the RAM on the CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return data.images.nbytes <= GPU_SHARE * free
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return data.images.nbytes <= RAM_SHARE * ram


def epoch_plan(count: int, steps: int, batch: int, flip: bool,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The epoch's image order (steps * batch indices) and, with flips, one coin per image, on the CPU."""
    order = torch.randperm(count, generator=generator)[:steps * batch]
    coins = torch.rand(steps * batch, generator=generator) < 0.5 if flip else None
    return order, coins


def finish(images_uint8: torch.Tensor, coins: torch.Tensor | None, channels_last: bool) -> torch.Tensor:
    """uint8 batch on the device -> [-1, 1], mirrored where its coin says so, in the networks' layout."""
    images = to_signed(images_uint8)
    if coins is not None:
        images = mirror_where(images, coins)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


class DeviceBatches:
    """The whole uint8 dataset on the training device; batches are gathered there by index."""

    def __init__(self, data: ImageData, device: torch.device, channels_last: bool):
        self.device, self.channels_last = device, channels_last
        self.images = torch.from_numpy(np.array(data.images)).to(device)

    def epoch(self, order: torch.Tensor, coins: torch.Tensor | None, batch: int) -> Iterator[torch.Tensor]:
        order = order.to(self.device, non_blocking=True)
        coins = None if coins is None else coins.to(self.device, non_blocking=True)
        for start in range(0, len(order), batch):
            flips = None if coins is None else coins[start:start + batch]
            yield finish(self.images.index_select(0, order[start:start + batch]), flips, self.channels_last)


class CachedImages(torch.utils.data.Dataset):
    """Index batches -> uint8 tensors, read from the memory-mapped cache file (reopened in each worker)."""

    def __init__(self, data: ImageData, batches: list[np.ndarray]):
        memmap = data.images
        self.file = getattr(memmap, "filename", None)
        self.offset, self.shape = getattr(memmap, "offset", 0), memmap.shape
        self.in_memory = None if self.file else np.asarray(memmap)
        self.batches = batches
        self.images = None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.images is None:
            self.images = self.in_memory if self.file is None else \
                np.memmap(self.file, dtype=np.uint8, mode="r", offset=self.offset, shape=self.shape)
        return torch.from_numpy(self.images[self.batches[index]])


class StreamedBatches:
    """Batches read from the uint8 cache on the host (by DataLoader workers on CUDA, into pinned memory)."""

    def __init__(self, data: ImageData, device: torch.device, channels_last: bool, workers: int | None = None):
        self.data, self.device, self.channels_last = data, device, channels_last
        if workers is None:  # on the CPU, workers would take the trainer's cores
            workers = 4 if device.type == "cuda" else 0
        self.workers = workers

    def epoch(self, order: torch.Tensor, coins: torch.Tensor | None, batch: int) -> Iterator[torch.Tensor]:
        batches = [part.numpy() for part in order.split(batch)]
        loader = torch.utils.data.DataLoader(CachedImages(self.data, batches), batch_size=None, shuffle=False,
                                             num_workers=self.workers, pin_memory=self.device.type == "cuda",
                                             multiprocessing_context="spawn" if self.workers else None)
        coins = None if coins is None else coins.to(self.device, non_blocking=True)
        for index, images in enumerate(loader):
            flips = None if coins is None else coins[index * batch:(index + 1) * batch]
            yield finish(images.to(self.device, non_blocking=True), flips, self.channels_last)


def batch_source(data: ImageData, device: torch.device, placement: str, channels_last: bool):
    """DeviceBatches or StreamedBatches for the data_on_device setting (auto: by fits_on_device)."""
    on_device = placement == "on" or (placement == "auto" and fits_on_device(data, device))
    return (DeviceBatches if on_device else StreamedBatches)(data, device, channels_last)
