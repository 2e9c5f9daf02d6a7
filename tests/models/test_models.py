import pytest
import torch
from torch import nn

from dcgan.errors import UserError
from dcgan.models.dcgan import Discriminator, Generator, build_models


def generator_params(size, nz, ngf, nc):
    """Hand count: transposed convs have no bias; each BatchNorm has 2 parameters per channel."""
    side, n = (6, 4) if size == 96 else (4, {32: 3, 64: 4, 128: 5}[size])
    widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 64px: 512, 256, 128, 64
    total = nz * widths[0] * side * side + 2 * widths[0]
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * nc * 16


def discriminator_params(size, ndf, nc):
    side, n = (6, 4) if size == 96 else (4, {32: 3, 64: 4, 128: 5}[size])
    widths = [ndf * 2 ** i for i in range(n)]  # e.g. 64px: 64, 128, 256, 512
    total = nc * widths[0] * 16
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * side * side


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_64px_parameter_counts_match_the_reference_dcgan():
    assert count(Generator(64, 100, 64, 3)) == 3_576_704
    assert count(Discriminator(64, 64, 3)) == 2_765_568


@pytest.mark.parametrize("size", [32, 64, 96, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_counts_per_size(size, channels):
    generator, discriminator = Generator(size, 20, 8, channels), Discriminator(size, 8, channels)
    assert count(generator) == generator_params(size, 20, 8, channels)
    assert count(discriminator) == discriminator_params(size, 8, channels)
    images = generator(torch.randn(3, 20))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images).shape == (3,)
    # z may also come as (B, nz, 1, 1), as in the reference implementation
    assert generator(torch.randn(2, 20, 1, 1)).shape == (2, channels, size, size)


def test_layer_types_follow_the_paper():
    generator, discriminator = Generator(64, 100, 16, 3), Discriminator(64, 16, 3)
    g_layers, d_layers = list(generator.net), list(discriminator.net)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in g_layers) == 5
    assert sum(isinstance(m, nn.ReLU) for m in g_layers) == 4
    assert isinstance(g_layers[-1], nn.Tanh)
    assert sum(isinstance(m, nn.Conv2d) for m in d_layers) == 5
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert not isinstance(d_layers[1], nn.BatchNorm2d)  # no BatchNorm after D's input layer
    assert isinstance(d_layers[-1], nn.Conv2d)  # logits: no sigmoid at the end


def test_discriminator_returns_unbounded_logits():
    discriminator = Discriminator(32, 8, 1)
    with torch.no_grad():
        discriminator.net[-1].weight.fill_(1.0)
    logits = discriminator(torch.ones(4, 1, 32, 32))
    assert (logits.abs() > 1).any()


@torch.no_grad()
def test_initialisation_matches_the_paper():
    torch.manual_seed(0)
    generator, discriminator = build_models(64, 3, 100, 64, 64)
    conv_weights = torch.cat([m.weight.flatten() for net in (generator, discriminator) for m in net.modules()
                              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(conv_weights.mean().item()) < 1e-3
    assert conv_weights.std().item() == pytest.approx(0.02, rel=0.02)
    bn = [m for net in (generator, discriminator) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in bn])
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01)
    assert scales.std().item() == pytest.approx(0.02, rel=0.2)
    assert all(torch.count_nonzero(m.bias) == 0 for m in bn)


def test_same_seed_same_weights():
    torch.manual_seed(3)
    first = build_models(32, 1, 10, 8, 8)[0].state_dict()
    torch.manual_seed(3)
    second = build_models(32, 1, 10, 8, 8)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("size", [16, 48, 100, 256])
def test_unsupported_sizes_are_refused(size):
    with pytest.raises(UserError, match="unsupported image size"):
        Generator(size)
