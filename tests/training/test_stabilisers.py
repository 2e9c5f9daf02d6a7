"""EMA of G's weights and DiffAugment (models/test_stabilised_networks.py: spectral normalisation, the residual
networks and the WGAN-GP critic)."""

import torch
from torch import nn

from dcgan.config import TrainConfig
from dcgan.models.parts import build_networks
from dcgan.training.augment import POLICIES, cutout, diff_augment, translation
from dcgan.training.ema import ema_copy, ema_decay, move_ema


def test_ema_weights_move_as_the_formula_says():
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = ema_copy(generator)
    before = [p.detach().clone() for p in average.parameters()]
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
        generator[1].running_mean.fill_(0.7)
    move_ema(average, generator, (1.0 - ema_decay(0.999, 20000)).float())  # as step.update_g shares it
    assert ema_decay(0.999, 20000).item() == 0.999
    for old, new, weight in zip(before, average.parameters(), generator.parameters()):
        assert torch.allclose(new, 0.999 * old + 0.001 * weight)
    assert torch.equal(average[1].running_mean, generator[1].running_mean)  # buffers copied
    assert not any(p.requires_grad for p in average.parameters())


def test_ema_warms_up_so_the_random_start_is_forgotten():
    assert ema_decay(0.999, 1).item() == 2 / 11 and ema_decay(0.999, 100).item() == 101 / 110  # as Python divides
    generator = nn.Linear(2, 2)
    average = ema_copy(generator)
    old = average.weight.detach().clone()
    with torch.no_grad():
        generator.weight.add_(1.0)
    move_ema(average, generator, (1.0 - ema_decay(0.999, 1)).float())  # a 0-d tensor, as in training
    assert torch.allclose(average.weight, 2 / 11 * old + 9 / 11 * generator.weight)


def test_translation_shifts_whole_images_and_fills_with_zeros():
    images = torch.arange(1, 1 + 2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    moved = translation(images, torch.Generator().manual_seed(3))
    for original, shifted in zip(images, moved):
        found = [(dy, dx) for dy in range(-1, 2) for dx in range(-1, 2)
                 if torch.equal(shifted[0, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)],
                                original[0, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)])]
        assert len(found) == 1  # exactly one shift of at most 1/8 of the side explains the result
        assert (shifted == 0).sum() == 8 * 8 - (8 - abs(found[0][0])) * (8 - abs(found[0][1]))


def test_cutout_zeroes_one_square_of_half_the_side():
    images = torch.ones(4, 3, 16, 16)
    cut = cutout(images, torch.Generator().manual_seed(0))
    for image in cut:
        holes = (image == 0).all(dim=0)
        rows, cols = holes.any(dim=1).nonzero().flatten(), holes.any(dim=0).nonzero().flatten()
        assert holes.sum() == 64 and len(rows) == len(cols) == 8
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 7


def test_every_policy_changes_the_images_and_keeps_gradients_flowing_to_g():
    torch.manual_seed(0)
    cfg = TrainConfig(image_size=32, channels=3, nz=8, ngf=8, ndf=8)
    generator, discriminator = build_networks(cfg)
    fake = generator(torch.randn(6, 8))
    for name, policy in POLICIES.items():
        assert not torch.allclose(policy(fake, torch.Generator().manual_seed(1)), fake), name
    discriminator(diff_augment(fake, list(POLICIES), torch.Generator().manual_seed(1))).mean().backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        assert torch.isfinite(parameter.grad).all(), name
