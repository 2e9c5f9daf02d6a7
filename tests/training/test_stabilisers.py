"""EMA of G's weights and DiffAugment (models/test_stabilised_networks.py: spectral normalisation, the residual
networks and the WGAN-GP critic)."""

import torch
from torch import nn

from dcgan.config import TrainConfig
from dcgan.models.parts import build_networks
from dcgan.training.augment import POLICIES, cutout, diff_augment, translation
from dcgan.training.ema import ema_copy, ema_decay, move_ema


def test_ema_weights_move_as_the_formula_says_and_batchnorm_statistics_stay_its_own():
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Module())
    generator[2].register_buffer("scale", torch.zeros(2))  # a buffer of another kind: followed
    average = ema_copy(generator)
    before = [p.detach().clone() for p in average.parameters()]
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
        generator[1].running_mean.fill_(0.7)
        generator[2].scale.fill_(2.0)
    move_ema(average, generator, (1.0 - ema_decay(0.999, 0.0, 20000)).float())  # as step.update_g shares it
    assert ema_decay(0.999, 0.0, 20000).item() == 0.999
    for old, new, weight in zip(before, average.parameters(), generator.parameters()):
        assert torch.allclose(new, 0.999 * old + 0.001 * weight)
    assert torch.equal(average[1].running_mean, torch.zeros(4))  # G's statistics are not the average's
    assert torch.equal(average[2].scale, generator[2].scale)
    assert not any(p.requires_grad for p in average.parameters())


def test_ema_warms_up_with_a_half_life_of_a_share_of_the_images_seen():
    # half-life rampup x t steps: d ** (rampup * t) == 1/2, until d reaches the decay
    for t in (1, 10, 100, 1000):
        d = ema_decay(0.999, 0.02, t).item()
        assert d == min(0.999, 0.5 ** (1.0 / (0.02 * t)))  # as Python computes it
        assert d == 0.999 or abs(d ** (0.02 * t) - 0.5) < 1e-9
    assert ema_decay(0.999, 0.02, 10**6).item() == 0.999
    generator = nn.Linear(2, 2)
    average = ema_copy(generator)
    with torch.no_grad():
        generator.weight.add_(1.0)
    share = (1.0 - ema_decay(0.999, 0.02, 1)).float()  # a 0-d tensor, as in training: 1 - 2^-50
    move_ema(average, generator, share)
    assert torch.allclose(average.weight, generator.weight)  # the random start is forgotten at once


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
