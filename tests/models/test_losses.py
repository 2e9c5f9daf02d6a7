"""The losses on hand-picked outputs, and the penalties each loss owns (WGAN-GP's, R1) against hand-computed
values."""

import math

import pytest
import torch

from dcgan import TrainConfig, train
from dcgan.models.losses import gradient_penalty, r1_penalty
from dcgan.models.statistics import reporting
from dcgan.registry import LOSSES
from tests.helpers import dcgan as run_cli
from tests.helpers import quiet, tiny_run_flags


def discriminator_loss(real, fake, real_label=1.0, fake_label=0.0, loss="bce"):
    return LOSSES.spec(loss).d_loss(real, fake, real_label, fake_label)


def generator_loss(fake, loss="bce", real=None):
    return LOSSES.spec(loss).g_loss(real, fake)


def mean_output(outputs, loss):
    return LOSSES.spec(loss).mean_output(outputs)

REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])


def bce(logit, target):
    p = torch.sigmoid(torch.tensor(logit))
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).item()


def test_bce_with_one_sided_smoothing_matches_the_formula():
    expected = (bce(2.0, 0.9) + bce(-1.0, 0.9)) / 2 + (bce(0.5, 0.0) + bce(-3.0, 0.0)) / 2
    assert discriminator_loss(REAL, FAKE, 0.9, 0.0, "bce").item() == pytest.approx(expected, rel=1e-5)
    assert generator_loss(FAKE, "bce").item() == pytest.approx((bce(0.5, 1) + bce(-3.0, 1)) / 2, rel=1e-5)


def test_lsgan_hinge_and_wasserstein_match_their_formulas():
    lsgan_d = ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + (0.5 ** 2 + 3.0 ** 2) / 2
    assert discriminator_loss(REAL, FAKE, loss="lsgan").item() == pytest.approx(lsgan_d)
    assert generator_loss(FAKE, "lsgan").item() == pytest.approx(((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2)
    hinge_d = (max(0, 1 - 2) + max(0, 1 + 1)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3)) / 2
    assert discriminator_loss(REAL, FAKE, loss="hinge").item() == pytest.approx(hinge_d)
    assert generator_loss(FAKE, "hinge").item() == pytest.approx(1.25)
    assert discriminator_loss(REAL, FAKE, loss="wgan-gp").item() == pytest.approx(-1.25 - 0.5)
    assert generator_loss(FAKE, "wgan-gp").item() == pytest.approx(1.25)


def test_the_gradient_penalty_matches_a_hand_computed_value():
    # critic(x) = sum of squares: its gradient at x is 2x. Image 1 is taken whole from real (mixing 1):
    # x = (3, 4), gradient (6, 8), norm 10, penalty (10 - 1)^2 = 81. Image 2 halfway between (2, 0) and (0, 0):
    # x = (1, 0), gradient (2, 0), norm 2, penalty 1. Mean: 41.
    real = torch.tensor([[[[3.0, 4.0]]], [[[2.0, 0.0]]]])  # (2, 1, 1, 2)
    fake = torch.tensor([[[[0.0, 0.0]]], [[[0.0, 0.0]]]])
    penalty = gradient_penalty(lambda x: x.square().flatten(1).sum(1), real, fake, torch.tensor([1.0, 0.5]))
    assert penalty.item() == pytest.approx(41.0)


def test_the_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_trains_the_critic():
    weight = torch.tensor([0.6, 0.8], requires_grad=True)  # norm 1: gradient norm 1 everywhere
    real, fake = torch.randn(5, 1, 1, 2), torch.randn(5, 1, 1, 2)
    penalty = gradient_penalty(lambda x: (x.flatten(1) * weight).sum(1), real, fake, torch.rand(5))
    assert penalty.item() == pytest.approx(0.0, abs=1e-10)
    doubled = gradient_penalty(lambda x: (x.flatten(1) * weight * 2).sum(1), real, fake, torch.rand(5))
    assert doubled.item() == pytest.approx(1.0)  # (2 - 1)^2
    doubled.backward()  # create_graph: the penalty's gradient reaches the critic's weights
    assert torch.allclose(weight.grad, 2 * 2 * weight.detach())  # d/dw (2|w| - 1)^2 = 2(2|w|-1) * 2 w/|w|


def test_d_outputs_are_probabilities_for_bce_and_raw_scores_otherwise():
    assert mean_output(torch.tensor([0.0, 0.0]), "bce").item() == pytest.approx(0.5)
    assert mean_output(torch.tensor([4.0, -1.0]), "hinge").item() == pytest.approx(1.5)


def test_every_registered_loss_is_a_whole_spec():
    for name in LOSSES.names:
        loss = LOSSES.spec(name)
        assert loss.critic_norm in ("batch", "layer") and loss.n_critic >= 1 and len(loss.betas) == 2
        assert torch.isfinite(loss.d_loss(REAL, FAKE, 1.0, 0.0)) and torch.isfinite(loss.g_loss(REAL, FAKE))
    assert {name: LOSSES.spec(name).penalty_setting for name in LOSSES.names if LOSSES.spec(name).penalty_setting} \
        == {"wgan-gp": "gp_weight", "r1": "r1_gamma"}
    assert [name for name in LOSSES.names if LOSSES.spec(name).targets] == ["bce", "lsgan", "r1"]


def test_the_relativistic_average_loss_matches_its_formula():
    # D: is a real image more realistic than the average generated one (mean FAKE = -1.25), and a generated one
    # less so than the average real one (mean REAL = 0.5)? G: the mirror image.
    d = (bce(3.25, 1) + bce(0.25, 1)) / 2 + (bce(0.0, 0) + bce(-3.5, 0)) / 2
    g = (bce(0.0, 1) + bce(-3.5, 1)) / 2 + (bce(3.25, 0) + bce(0.25, 0)) / 2
    assert discriminator_loss(REAL, FAKE, loss="relativistic").item() == pytest.approx(d, rel=1e-5)
    assert generator_loss(FAKE, "relativistic", real=REAL).item() == pytest.approx(g, rel=1e-5)


def test_a_relativistic_run_trains_and_its_outputs_are_scores(small_config):
    state = train(small_config(epochs=1, loss="relativistic"), log=quiet)
    row = state.history[-1]
    assert all(math.isfinite(row[name]) for name in ("loss_D", "loss_G", "D_x", "D_G_z"))
    assert not LOSSES.spec("relativistic").probabilities and state.cfg.n_critic == 1


def test_the_r1_penalty_matches_a_hand_computed_value():
    # critic(x) = sum of squares: gradient 2x. Image 1: x = (3, 4), gradient (6, 8), squared norm 100. Image 2:
    # x = (1, 0), gradient (2, 0), squared norm 4. Mean: 52. The loss adds gamma / 2 times it: 5 * 52 = 260.
    real = torch.tensor([[[[3.0, 4.0]]], [[[1.0, 0.0]]]])
    critic = lambda x: x.square().flatten(1).sum(1)  # noqa: E731
    assert r1_penalty(critic, real).item() == pytest.approx(52.0)
    loss = LOSSES.spec("r1").configured(TrainConfig(loss="r1", r1_gamma=10.0))
    with reporting(torch.device("cpu")) as reported:
        added = loss.d_penalty(critic, real, torch.zeros_like(real), torch.Generator())
    assert added.item() == pytest.approx(260.0) and reported.statistics()["r1_penalty"].item() == pytest.approx(52.0)
    # the penalty trains D: its gradient reaches the critic's weights, and none reaches the images
    weight = torch.tensor(2.0, requires_grad=True)
    r1_penalty(lambda x: weight * x.square().flatten(1).sum(1), real).backward()
    assert weight.grad.item() == pytest.approx(2 * 52.0 * 2.0)  # d/dw of mean ||2 w x||^2 = 2 w * mean ||2 x||^2
    assert real.grad is None


def test_each_loss_owns_its_penalty_weighed_by_the_setting_it_names():
    real = torch.tensor([[[[3.0, 4.0]]], [[[2.0, 0.0]]]])
    fake = torch.zeros_like(real)
    critic = lambda x: x.square().flatten(1).sum(1)  # noqa: E731
    wgan = LOSSES.spec("wgan-gp").configured(TrainConfig(loss="wgan-gp", gp_weight=2.0))
    mixing = torch.rand(2, generator=torch.Generator().manual_seed(5))  # what the loss draws from the stream
    with reporting(torch.device("cpu")) as reported:
        added = wgan.d_penalty(critic, real, fake, torch.Generator().manual_seed(5))
    expected = gradient_penalty(critic, real, fake, mixing)
    assert added.item() == pytest.approx(2.0 * expected.item())
    assert reported.statistics()["gradient_penalty"].item() == pytest.approx(expected.item())
    assert LOSSES.spec("wgan-gp").weight == 10.0  # (the registered spec itself keeps its default)
    for name in ("bce", "lsgan", "hinge", "relativistic"):
        assert LOSSES.spec(name).d_penalty(critic, real, fake, torch.Generator()) is None


def test_the_step_adds_the_penalty_to_d_s_loss(small_config):
    """loss_D of an r1 run with gamma 0 is bce's; with gamma 10 it is larger by exactly 5 times r1_penalty."""
    plain = train(small_config(epochs=1, loss="r1", r1_gamma=0.0, log_every=1, run="g0"), log=quiet)
    penalised = train(small_config(epochs=1, loss="r1", r1_gamma=10.0, log_every=1, run="g10"), log=quiet)
    first = [row for row in penalised.history if row["kind"] == "step"][0]
    bce_only = [row for row in plain.history if row["kind"] == "step"][0]
    # the first step starts from the same weights and batch: D's loss differs by the penalty alone
    assert first["loss_D"] == pytest.approx(bce_only["loss_D"] + 5.0 * first["r1_penalty"], rel=1e-4)
    assert state_norm(penalised) != state_norm(plain)


def state_norm(state):
    return sum(float(p.detach().double().norm()) for p in state.nets.discriminator.parameters())


def test_the_r1_loss_trains_from_the_command_line(tmp_path):
    result = run_cli("train", *tiny_run_flags(tmp_path, "r1"), "--epochs", "1", "--loss", "r1", "--r1-gamma", "5",
                     "--real-label", "0.9")
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "checkpoints" / "r1" / "history.csv").read_text().splitlines()[0].split(",")
    assert "r1_penalty" in header and "r1_penalty" in result.stdout
    refused = run_cli("train", *tiny_run_flags(tmp_path, "gp"), "--loss", "hinge", "--r1-gamma", "5")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: --r1-gamma weighs the penalty of --loss r1 only: drop it or use that loss"
