"""The GAN losses: one spec per loss, each holding everything a run needs to know of it.

A spec's D loss and G loss both take D's raw outputs on real and generated images (logits for bce, scores for
the others), so a relativistic loss fits as well as these:
    bce      D: BCE(D(x), real_label) + BCE(D(G(z)), fake_label)      G: BCE(D(G(z)), 1)  (non-saturating)
    lsgan    D: mean (D(x) - real_label)^2 + mean (D(G(z)) - fake_label)^2   G: mean (D(G(z)) - 1)^2
    hinge    D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))           G: -mean D(G(z))
    wgan-gp  D: mean D(G(z)) - mean D(x) + gp_weight * gradient penalty G: -mean D(G(z))
    r1       D: bce's + r1_gamma / 2 * mean ||grad_x D(x)||^2 on real images             G: bce's
real_label 0.9 is one-sided label smoothing (bce, lsgan and r1). A loss owns its penalty (`d_penalty`), which the
step adds to D's loss, and reports what it measures by name (models/statistics.py). It says what D's output is
(`probabilities`, else its `score`), and `d_outputs()` names D's mean outputs accordingly wherever they are shown
("D(x)", a probability, under bce; "D(x) score" under hinge). Each spec is registered by name
in registry.LOSSES; `register_loss` adds one at run time, and `train(cfg, loss=...)` takes an instance of any
subclass of `Loss` directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..registry import LOSSES
from .statistics import report

if TYPE_CHECKING:
    from ..config import TrainConfig

Critic = Callable[[torch.Tensor], torch.Tensor]  # D as a function of images (with the batch's labels bound)


@dataclass(frozen=True)
class DOutputs:
    """What D's mean outputs on real and generated images (history.csv's D_x and D_G_z) are under a loss, named as
    the log line, the progress bar, the curves' legends and TensorBoard's tags show them."""

    real: str  # D's mean output on real images: "D(x)"
    fake: str  # and on generated ones: "D(G(z))"
    axis: str  # the curves' y axis: "mean probability of 'real'"
    probability: bool  # in [0, 1], 0.5 where D cannot tell real from generated


PROBABILITY_OF_REAL = DOutputs("D(x)", "D(G(z))", "mean probability of 'real'", probability=True)


class Loss:
    """A GAN loss. Subclasses give the two losses and, where they differ from these, the facts below."""

    probabilities = False  # D's outputs are logits of "real" (shown as probabilities) rather than raw scores
    score = "raw score (unbounded)"  # what D's output is when it is not a probability, for the curves' axis
    targets = False  # D's loss takes the --real-label / --fake-label targets
    n_critic = 1  # D steps per G step when --n-critic is 0
    betas = (0.5, 0.999)  # Adam's betas when --beta1 / --beta2 are -1
    critic_norm = "batch"  # D's normalisation layers: "batch" (BatchNorm) or "layer" (per image, for penalties)
    penalty_setting = ""  # the setting that weighs d_penalty ("gp_weight", "r1_gamma"); "" when the loss has none
    weight = 0.0  # that setting's value (configured() sets it from the run's settings)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, real_label: float, fake_label: float) -> torch.Tensor:
        """D's loss from its outputs on real and generated images (without any penalty)."""
        raise NotImplementedError

    def g_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """G's loss from D's outputs on real images (detached) and on generated ones."""
        raise NotImplementedError

    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                  generator: torch.Generator) -> torch.Tensor | None:
        """What D's loss adds, already weighed (None: nothing). `critic` is D on its own (not compiled, not DDP:
        penalties differentiate twice), `real` and `fake` the images D just judged, `generator` the run's noise
        stream (its only source of randomness, so that a run repeats and a CUDA graph replays it)."""
        return None

    def configured(self, cfg: TrainConfig) -> Loss:
        """This loss with the run's settings: its penalty weighed by the setting it names."""
        if not self.penalty_setting:
            return self
        configured = copy.copy(self)
        configured.weight = float(getattr(cfg, self.penalty_setting))
        return configured

    def mean_output(self, outputs: torch.Tensor) -> torch.Tensor:
        """D's mean output for the history: the probability of 'real', or the raw score."""
        return torch.sigmoid(outputs).mean() if self.probabilities else outputs.mean()

    def d_outputs(self) -> DOutputs:
        """How D's mean outputs are named: D(x) and D(G(z)) as probabilities of 'real', else as the loss's scores."""
        if self.probabilities:
            return PROBABILITY_OF_REAL
        return DOutputs("D(x) score", "D(G(z)) score", f"mean {self.score}", probability=False)


class BCELoss(Loss):
    """The DCGAN loss: binary cross-entropy on D's logits; G's is the non-saturating one (target 1)."""

    probabilities = targets = True

    def d_loss(self, real, fake, real_label, fake_label):
        return bce_to(real, real_label) + bce_to(fake, fake_label)

    def g_loss(self, real, fake):
        return bce_to(fake, 1.0)


class LeastSquaresLoss(Loss):
    """LSGAN (Mao et al., 2017): squared distance of D's scores from the targets."""

    targets = True
    score = "score (regressed towards the real and fake targets)"

    def d_loss(self, real, fake, real_label, fake_label):
        return (real - real_label).square().mean() + (fake - fake_label).square().mean()

    def g_loss(self, real, fake):
        return (fake - 1).square().mean()


class HingeLoss(Loss):
    """The hinge loss of SAGAN and BigGAN."""

    def d_loss(self, real, fake, real_label, fake_label):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, real, fake):
        return -fake.mean()


class WassersteinGPLoss(Loss):
    """WGAN-GP (Gulrajani et al., 2017): D is a critic, 5 steps per G step, Adam (0, 0.9), layer norm, and the
    gradient penalty at points between real and generated images."""

    n_critic, betas, critic_norm = 5, (0.0, 0.9), "layer"
    penalty_setting, weight = "gp_weight", 10.0

    def d_loss(self, real, fake, real_label, fake_label):
        return fake.mean() - real.mean()

    def g_loss(self, real, fake):
        return -fake.mean()

    def d_penalty(self, critic, real, fake, generator):
        mixing = torch.rand(real.shape[0], device=real.device, generator=generator)
        penalty = gradient_penalty(critic, real, fake, mixing)
        report("gradient_penalty", penalty)
        return self.weight * penalty


class RelativisticAverageLoss(Loss):
    """RaGAN (Jolicoeur-Martineau, 2019): D judges whether a real image is more realistic than the average generated
    one, and the other way round; G's loss is the mirror image, so it learns from the real images' outputs too."""

    def d_loss(self, real, fake, real_label, fake_label):
        return bce_to(real - fake.mean(), 1.0) + bce_to(fake - real.mean(), 0.0)

    def g_loss(self, real, fake):
        return bce_to(fake - real.mean(), 1.0) + bce_to(real - fake.mean(), 0.0)


class R1Loss(BCELoss):
    """The non-saturating loss with the R1 penalty on real images (Mescheder et al., 2018), StyleGAN2's recipe:
    D's gradient at real images pushed towards zero, so that D does not overshoot once G draws the data. Per-image
    gradients need images normalised on their own: D takes layer norm."""

    critic_norm = "layer"
    penalty_setting, weight = "r1_gamma", 10.0

    def d_penalty(self, critic, real, fake, generator):
        penalty = r1_penalty(critic, real)
        report("r1_penalty", penalty)
        return self.weight / 2 * penalty


BCE, LSGAN, HINGE, WGAN_GP = BCELoss(), LeastSquaresLoss(), HingeLoss(), WassersteinGPLoss()
RELATIVISTIC, R1 = RelativisticAverageLoss(), R1Loss()


def bce_to(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE of sigmoid(logits) against a constant target (stable: computed from the logits)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty: mean over images of (||grad_x critic(x)||_2 - 1)^2 at x = mixing * real + (1 - mixing)
    * fake, one mixing weight in [0, 1] per image, shape (B,)."""
    weights = mixing.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    between = (weights * real.detach() + (1 - weights) * fake.detach()).requires_grad_(True)
    scores = critic(between).float()
    (grad,) = torch.autograd.grad(scores.sum(), between, create_graph=True)
    return (grad.float().flatten(1).norm(dim=1) - 1).square().mean()


def r1_penalty(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1: mean over real images of ||grad_x critic(x)||_2^2 (the caller weighs it by gamma / 2)."""
    real = real.detach().requires_grad_(True)
    scores = critic(real).float()
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.float().flatten(1).square().sum(dim=1).mean()


def register_loss(name: str, loss: Loss | type[Loss]) -> None:
    """Make `loss` (an instance of a Loss subclass, or the subclass) the loss `name` for --loss / TrainConfig.loss in
    this process; a name registered before is replaced, a built-in one is refused."""
    if isinstance(loss, type) and issubclass(loss, Loss):
        loss = loss()
    if not isinstance(loss, Loss):
        raise UserError(f"register_loss({name!r:.40}, ...) takes a subclass of dcgan.Loss or an instance of one, "
                        f"not {type(loss).__name__}")
    LOSSES.register(name, loss)
