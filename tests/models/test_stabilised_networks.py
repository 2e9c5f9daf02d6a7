"""Spectral normalisation, the residual networks and the WGAN-GP critic (training/test_stabilisers.py: EMA and
DiffAugment)."""

import pytest
import torch
from torch import nn

from dcgan.config import TrainConfig
from dcgan.models.parts import build_networks
from dcgan.models.resnet import ResNetDiscriminator, ResNetGenerator


def test_spectral_norm_keeps_ds_layers_at_unit_largest_singular_value():
    torch.manual_seed(0)
    _, discriminator = build_networks(TrainConfig(image_size=32, channels=1, ndf=8, spectral_norm=True))
    for _ in range(30):  # each training-mode forward runs one power iteration
        discriminator(torch.randn(4, 1, 32, 32))
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4 and all(hasattr(m, "parametrizations") for m in layers)
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("size, side", [(32, 4), (64, 4), (96, 6), (128, 4)])
def test_the_resnet_gan_has_the_right_shapes(size, side):
    generator, discriminator = ResNetGenerator(size, 16, 8, 3), ResNetDiscriminator(size, 8, 3)
    assert generator.side == side
    images = generator(torch.randn(2, 16))
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert discriminator(images).shape == (2,)


def test_the_resnet_recipe_dropout_momentum_and_residual_blocks():
    generator, discriminator = ResNetGenerator(96, 100, 64, 3), ResNetDiscriminator(96, 64, 3)
    dropouts = [m.p for m in discriminator.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.4] * 4
    norms = [m for m in (*generator.modules(), *discriminator.modules()) if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.5 for m in norms)
    assert [m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 4
    assert len(generator.blocks) == 4  # 6 -> 12 -> 24 -> 48 -> 96


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_the_wgan_gp_critic_has_no_batchnorm(arch):
    _, critic = build_networks(TrainConfig(arch=arch, image_size=32, channels=1, ndf=8, loss="wgan-gp"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules())
    one = critic.eval()(torch.randn(1, 1, 32, 32))  # each image's score does not depend on the rest of the batch
    batch = critic(torch.cat([torch.randn(1, 1, 32, 32), torch.randn(3, 1, 32, 32)]))
    assert one.shape == (1,) and batch.shape == (4,)
    images = torch.randn(4, 1, 32, 32)
    assert torch.allclose(critic(images)[:1], critic(images[:1]), atol=1e-5)
