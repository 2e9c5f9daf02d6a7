"""Training on several processes with torchrun and DistributedDataParallel (DDP).

`torchrun --nproc_per_node N -m dcgan train ...` starts N processes; each learns its rank from the variables
torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Every rank draws the same epoch plan
from the run's seed and trains on its own slice of each global batch; DDP averages the gradients, so G and D
stay identical on every rank. Rank 0 alone writes files and prints. Without torchrun, the run's World is
state.World, one process, and nothing here runs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..device import pick_device
from ..errors import TORCHRUN_VARIABLES, TrainingStopped, UserError, torchrun_rank
from .state import World

# Rank 0 may spend long minutes alone (building the image cache, training the FID classifier) while the other
# ranks wait for it: a generous timeout for the collectives.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class TorchrunWorld(World):
    """The processes torchrun started: rank `rank` of `size`, in a process group."""

    distributed: bool = True

    def local_batch(self, batch: int) -> int:
        if batch % self.size:
            raise UserError(f"--batch-size {batch} does not split evenly over {self.size} processes: use a "
                            f"multiple of {self.size}")
        return batch // self.size

    def shard(self, plan: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """This rank's part of an epoch plan (steps * batch entries, one global batch after another): the
        rank-th slice of every global batch."""
        if plan is None or self.size == 1:
            return plan
        local = self.local_batch(batch)
        return plan.view(-1, batch)[:, self.rank * local:(self.rank + 1) * local].reshape(-1)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over the ranks."""
        total = tensor.clone()
        dist.all_reduce(total)
        return total / self.size

    def average_buffers(self, *networks: nn.Module | None) -> None:
        """Make BatchNorm's running statistics the mean over the ranks: each rank's follow its own share of the
        batches (buffers are not broadcast), so they are averaged before samples and checkpoints are made."""
        for network in networks:
            for buffer in network.buffers() if network is not None else ():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer.div_(self.size)

    def agree(self, values: list, device: torch.device) -> list[int]:
        """Each value's maximum over the ranks, as ints (ints or 0-d tensors in; one host sync)."""
        flags = torch.stack([torch.as_tensor(value, dtype=torch.int64, device=device) for value in values])
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return flags.tolist()

    def gather(self, item: Any) -> list[Any]:
        """Every rank's `item`, in rank order."""
        items: list[Any] = [None] * self.size
        dist.all_gather_object(items, item)
        return items

    def barrier(self) -> None:
        dist.barrier()

    def on_main(self, job: Callable[[], Any], device: torch.device) -> Any:
        """Run `job` on rank 0 only (writing files); when it fails, every rank stops, rank 0 with the error."""
        error, result = None, None
        if self.main:
            try:
                result = job()
            except Exception as caught:  # re-raised below, once every rank knows
                error = caught
        if self.agree([error is not None], device)[0]:
            if error is not None:
                raise error
            raise TrainingStopped("", exit_code=2)  # rank 0 reports the problem
        return result

    def wrap(self, network: nn.Module, device: torch.device) -> nn.Module:
        """DDP around `network`; buffers are not synced at each forward, since D runs twice (real, fake) before a
        backward (torch 2.14 names that forward_sync_buffers and warns about the older broadcast_buffers)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        no_sync = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
        return DistributedDataParallel(network, device_ids=ids, **no_sync)


def launched_by_torchrun() -> bool:
    """Whether torchrun started this process. Some of its variables without the others, or values that do not fit
    together, are a UserError naming them."""
    present = [name for name in TORCHRUN_VARIABLES if name in os.environ]
    if not present:
        return False
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise UserError(f"{', '.join(present)} set but {', '.join(missing)} missing: a run on several processes "
                        f"is started with torchrun, which sets them all; otherwise unset {' '.join(present)}")
    if torchrun_rank() is None or not os.environ["MASTER_PORT"].isdigit():
        shown = ", ".join(f"{name}={os.environ[name]!r:.20}" for name in ("RANK", "WORLD_SIZE", "MASTER_PORT"))
        raise UserError(f"the torchrun variables do not fit together ({shown}): RANK must be a whole number below "
                        "WORLD_SIZE; start with torchrun")
    return True


@contextlib.contextmanager
def joined_world(requested_device: str) -> Iterator[tuple[World, torch.device]]:
    """The process's World and training device; under torchrun, joins the process group for the block."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        if dist.is_available() and dist.is_initialized():  # the caller set up the group itself
            yield TorchrunWorld(dist.get_rank(), dist.get_world_size()), rank_device(requested_device)
        else:
            yield World(), pick_device(requested_device)
        return
    if not dist.is_available():
        raise UserError("this PyTorch build has no torch.distributed: run without torchrun")
    device = rank_device(requested_device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    try:
        yield TorchrunWorld(dist.get_rank(), dist.get_world_size()), device
    finally:
        dist.destroy_process_group()


def rank_device(requested: str) -> torch.device:
    """cuda:LOCAL_RANK on GPU machines (one GPU per process), else the CPU."""
    device = pick_device(requested)
    if device.type != "cuda":
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"process {local_rank} has no GPU of its own ({torch.cuda.device_count()} found): start "
                        "at most one process per GPU (--nproc_per_node)")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def with_sync_batchnorm(network: nn.Module, world: World, device: torch.device) -> nn.Module:
    """--sync-bn: BatchNorm statistics over the global batch instead of each rank's slice (CUDA only)."""
    if not world.distributed:
        raise UserError("--sync-bn applies to runs started with torchrun on several GPUs: drop it")
    if device.type != "cuda":
        raise UserError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU version): drop it")
    return nn.SyncBatchNorm.convert_sync_batchnorm(network)
