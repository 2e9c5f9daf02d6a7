"""Arithmetic of a training step, counted from the layer shapes: for MFU figures in the benchmark.

A training iteration per real image runs D forward three times (real, fake for D's step, fake for G's step)
and backward through all three (twice the forward's work each, weights and inputs), and G forward once and
backward once: 3 G forwards + 9 D forwards of multiply-adds, 2 FLOP each.
"""

from __future__ import annotations

import torch
from torch import nn


def forward_macs(module: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass per sample, from the convolution and linear layers."""
    total = 0

    def count(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        batch = inputs[0].shape[0]
        if isinstance(layer, nn.ConvTranspose2d):  # each input pixel scatters into out_ch x k x k outputs
            per_input = layer.out_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            total += inputs[0].numel() // batch * per_input
        elif isinstance(layer, nn.Conv2d):  # each output pixel gathers in_ch x k x k inputs
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            total += output.numel() // batch * per_output
        elif isinstance(layer, nn.Linear):
            total += output.numel() // batch * layer.in_features

    handles = [layer.register_forward_hook(count) for layer in module.modules()
               if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            was_training = module.training
            module.eval()
            module(example)
            module.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return total


def training_flops_per_image(generator: nn.Module, discriminator: nn.Module, nz: int, image_shape: tuple) -> dict:
    """{'G_macs', 'D_macs', 'flops'}: forward MACs of G and D per image, and FLOP of one training iteration."""
    device = next(generator.parameters()).device
    g_macs = forward_macs(generator, torch.zeros(2, nz, device=device))
    d_macs = forward_macs(discriminator, torch.zeros(2, *image_shape, device=device))
    return {"G_macs": g_macs, "D_macs": d_macs, "flops": 2 * (3 * g_macs + 9 * d_macs)}
