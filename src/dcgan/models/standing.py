"""BatchNorm statistics that belong to a generator's own weights ("standing statistics", Brock et al., 2019).

A BatchNorm layer drawn in eval mode normalises with the running mean and variance it collected in training.
The moving average of G (--ema) never trains: its weights are an average of G's, so G's running statistics do
not fit them (after one epoch of Fashion-MNIST the averaged G scored FID 475.0 with G's statistics and 413.5
with its own; docs/variants.md). `settle_statistics` recomputes them: every BatchNorm layer is reset and then
averages, with equal weights (momentum None), the batch statistics of a fixed set of noise batches passed through
the network in training mode. Nothing else changes: the weights, the other layers' mode, the caller's random
streams.

The same noise every time (a seeded CPU stream), so the statistics are a function of the weights alone: a run
resumed from a checkpoint, or a checkpoint loaded by `sample`, gets the statistics the run itself drew with.
"""

from __future__ import annotations

import torch
from torch import nn

from .conditional import cycling_labels

STANDING_IMAGES = 1024  # noise vectors whose batch statistics make up the running statistics
STANDING_SEED = 20190228  # their seed: the same noise for every network and every call
EMA_STATISTICS = "own"  # a checkpoint's mark that its moving average holds the statistics of its own weights
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class LocalBatchNorm(nn.BatchNorm2d):
    """BatchNorm over this process's batch, of any number of dimensions: a SyncBatchNorm (--sync-bn) of G as the
    moving average holds it, whose statistics every process computes alone (same weights, same noise)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D input)")


def local_batch_norms(network: nn.Module) -> nn.Module:
    """The network with each SyncBatchNorm replaced, in place, by a LocalBatchNorm holding its weights and
    statistics (the same names, so state dicts keep their keys); other layers untouched. Returns the network."""
    for name, child in list(network.named_children()):
        if isinstance(child, nn.SyncBatchNorm):
            local = LocalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)
            local.load_state_dict(child.state_dict())
            local.to(next(child.buffers(), torch.empty(0)).device).train(child.training)
            local.requires_grad_(any(p.requires_grad for p in child.parameters()))
            setattr(network, name, local)
        else:
            local_batch_norms(child)
    return network


def batch_norms(network: nn.Module) -> list[nn.Module]:
    """The network's BatchNorm layers that keep running statistics."""
    return [module for module in network.modules() if isinstance(module, NORMS) and module.track_running_stats]


@torch.no_grad()
def settle_statistics(generator: nn.Module, nz: int, batch_size: int, images: int = STANDING_IMAGES) -> bool:
    """Give G's BatchNorm layers the running statistics of its own weights: the mean of their batch statistics over
    `images` fixed noise vectors in batches of `batch_size` (the training batch: the statistics G's layers saw).
    A conditional G (`classes` > 0) draws every class equally often. Returns whether G has such layers."""
    norms = batch_norms(generator)
    if not norms:
        return False
    device = next(generator.parameters()).device
    noise = torch.randn(images, nz, generator=torch.Generator().manual_seed(STANDING_SEED))
    batch = min(batch_size, images)
    classes = getattr(generator, "classes", 0)
    labels = cycling_labels(images, classes).split(batch) if classes else [None] * images
    momenta = [norm.momentum for norm in norms]
    modes = [module.training for module in generator.modules()]
    generator.eval()  # every other layer as it draws (dropout off)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every batch weighs the same
        norm.train()
    try:
        for z, label in zip(noise.split(batch), labels):
            generator(z.to(device), *(() if label is None else (label.to(device),)))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        for module, mode in zip(generator.modules(), modes):
            module.training = mode
    return True
