"""The BatchNorm statistics of a generator's own weights (models/standing.py), checked against the statistics that
forward hooks collect from the same batches."""

import copy

import pytest
import torch
from torch import nn

from dcgan.config import TrainConfig
from dcgan.models.parts import build_networks
from dcgan.models.standing import STANDING_IMAGES, STANDING_SEED, batch_norms, settle_statistics


def dcgan_generator(**settings) -> nn.Module:
    torch.manual_seed(0)
    cfg = TrainConfig(data="synthetic", image_size=32, channels=3, ngf=8, ndf=8, nz=12, **settings)
    return build_networks(cfg)[0]


def hooked_statistics(generator: nn.Module, inputs: list[tuple]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per BatchNorm layer: the mean over batches of the batch mean and of the unbiased batch variance of its input,
    the layers run in training mode on a copy (the definition of standing statistics, computed by hand)."""
    network = copy.deepcopy(generator).train()
    seen = {norm: [] for norm in batch_norms(network)}
    hooks = [norm.register_forward_hook(lambda module, args, out: seen[module].append(args[0].detach()))
             for norm in seen]
    with torch.no_grad():
        for arguments in inputs:
            network(*arguments)
    for hook in hooks:
        hook.remove()
    result = []
    for batches in seen.values():
        dims = [0] + list(range(2, batches[0].dim()))
        result.append((torch.stack([b.mean(dims) for b in batches]).mean(0),
                       torch.stack([b.var(dims, unbiased=True) for b in batches]).mean(0)))
    return result


def standing_noise(nz: int, batch: int) -> list[torch.Tensor]:
    return list(torch.randn(STANDING_IMAGES, nz, generator=torch.Generator().manual_seed(STANDING_SEED)).split(batch))


def test_the_statistics_are_the_mean_batch_statistics_of_its_own_forward_passes():
    generator = dcgan_generator()
    for norm in batch_norms(generator):  # statistics that belong to other weights
        norm.running_mean.fill_(3.0)
        norm.running_var.fill_(7.0)
    weights = {name: value.clone() for name, value in generator.named_parameters()}
    expected = hooked_statistics(generator, [(z,) for z in standing_noise(12, 64)])
    global_stream = torch.get_rng_state()
    assert settle_statistics(generator, nz=12, batch_size=64)
    for norm, (mean, var) in zip(batch_norms(generator), expected):
        torch.testing.assert_close(norm.running_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(norm.running_var, var, rtol=1e-5, atol=1e-6)
        assert norm.momentum == 0.1  # restored
    assert all(torch.equal(value, weights[name]) for name, value in generator.named_parameters())
    assert torch.equal(torch.get_rng_state(), global_stream)  # the caller's random stream is not drawn from


def test_it_depends_on_the_weights_alone_and_keeps_every_layer_mode():
    generator = dcgan_generator()
    generator.train()
    other = copy.deepcopy(generator)
    for norm in batch_norms(other):
        norm.running_mean.normal_()
    settle_statistics(generator, 12, 32)
    settle_statistics(other, 12, 32)
    assert all(torch.equal(a, b) for a, b in zip(generator.buffers(), other.buffers()))
    assert all(module.training for module in generator.modules())  # a G in training mode stays in it
    generator.eval()
    settle_statistics(generator, 12, 32)
    assert not any(module.training for module in generator.modules())


def test_eval_mode_then_draws_what_training_mode_draws_on_a_large_batch():
    """The point of the statistics: in eval mode the network behaves as it does on batches of its own images."""
    generator = dcgan_generator()
    with torch.no_grad():  # weights that no batch of training produced statistics for
        for parameter in generator.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    z = torch.randn(2048, 12, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        in_training_mode = generator.train()(z)
        stale = generator.eval()(z)
        settle_statistics(generator, 12, 128)
        settled = generator.eval()(z)
    assert (settled - in_training_mode).abs().mean() < 0.1 * (stale - in_training_mode).abs().mean()


def test_a_conditional_generator_draws_every_class_equally_often():
    generator = dcgan_generator(conditional=True, classes=4)
    labels = []
    generator.register_forward_pre_hook(lambda module, args: labels.append(args[1]))
    settle_statistics(generator, 12, 100)
    drawn = torch.cat(labels)
    assert len(drawn) == STANDING_IMAGES and drawn.bincount().tolist() == [256] * 4


@pytest.mark.parametrize("build", [lambda: nn.Sequential(nn.Linear(12, 16), nn.Tanh()),
                                   lambda: nn.Sequential(nn.Linear(12, 16), nn.LayerNorm(16))])
def test_a_generator_without_batchnorm_is_left_as_it_is(build):
    generator = build()
    before = copy.deepcopy(generator.state_dict())
    assert not settle_statistics(generator, 12, 32)
    assert all(torch.equal(before[name], value) for name, value in generator.state_dict().items())


def test_the_average_of_a_g_with_sync_batchnorm_settles_in_this_process_alone():
    """--sync-bn gives G SyncBatchNorm layers, which in training mode wait for every process: the average holds
    local BatchNorm layers instead, with the same weights, statistics and state-dict keys."""
    from dcgan.training.ema import ema_copy

    generator = dcgan_generator()
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(generator))
    assert any(isinstance(module, nn.SyncBatchNorm) for module in synced.modules())
    average = ema_copy(synced)
    assert not any(isinstance(module, nn.SyncBatchNorm) for module in average.modules())
    assert list(average.state_dict()) == list(synced.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(average.state_dict().values(), synced.state_dict().values()))
    assert not any(p.requires_grad for p in average.parameters())
    settle_statistics(average, 12, 64)  # no process group: a SyncBatchNorm could not run here
    settle_statistics(generator, 12, 64)
    assert all(torch.allclose(a, b) for a, b in zip(average.buffers(), generator.buffers()))
