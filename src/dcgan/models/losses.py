"""The GAN losses: one spec per loss, each holding everything a run needs to know of it.

A spec's D loss and G loss both take D's raw outputs on real and generated images (logits for bce, scores for
the others), so a relativistic loss fits as well as these:
    bce      D: BCE(D(x), real_label) + BCE(D(G(z)), fake_label)      G: BCE(D(G(z)), 1)  (non-saturating)
    lsgan    D: mean (D(x) - real_label)^2 + mean (D(G(z)) - fake_label)^2   G: mean (D(G(z)) - 1)^2
    hinge    D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))           G: -mean D(G(z))
    wgan-gp  D: mean D(G(z)) - mean D(x) + gp_weight * gradient penalty G: -mean D(G(z))
real_label 0.9 is one-sided label smoothing (bce and lsgan). Each spec is registered by name in registry.LOSSES.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]


class Loss:
    """A GAN loss. Subclasses give the two losses and, where they differ from these, the facts below."""

    probabilities = False  # D's outputs are logits of "real" (shown as probabilities) rather than raw scores
    targets = False  # D's loss takes the --real-label / --fake-label targets
    penalised = False  # D's loss adds --gp-weight times the gradient penalty, and D takes no BatchNorm
    n_critic = 1  # D steps per G step when --n-critic is 0
    betas = (0.5, 0.999)  # Adam's betas when --beta1 / --beta2 are -1
    critic_norm = "batch"  # D's normalisation layers: "batch" (BatchNorm) or "layer" (per image)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, real_label: float, fake_label: float) -> torch.Tensor:
        """D's loss from its outputs on real and generated images (without any penalty)."""
        raise NotImplementedError

    def g_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """G's loss from D's outputs on real images (detached) and on generated ones."""
        raise NotImplementedError

    def mean_output(self, outputs: torch.Tensor) -> torch.Tensor:
        """D's mean output for the history: the probability of 'real', or the raw score."""
        return torch.sigmoid(outputs).mean() if self.probabilities else outputs.mean()


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
    """WGAN-GP (Gulrajani et al., 2017): D is a critic, 5 steps per G step, Adam (0, 0.9), layer norm."""

    penalised = True
    n_critic, betas, critic_norm = 5, (0.0, 0.9), "layer"

    def d_loss(self, real, fake, real_label, fake_label):
        return fake.mean() - real.mean()

    def g_loss(self, real, fake):
        return -fake.mean()


class RelativisticAverageLoss(Loss):
    """RaGAN (Jolicoeur-Martineau, 2019): D judges whether a real image is more realistic than the average generated
    one, and the other way round; G's loss is the mirror image, so it learns from the real images' outputs too."""

    def d_loss(self, real, fake, real_label, fake_label):
        return bce_to(real - fake.mean(), 1.0) + bce_to(fake - real.mean(), 0.0)

    def g_loss(self, real, fake):
        return bce_to(fake - real.mean(), 1.0) + bce_to(real - fake.mean(), 0.0)


BCE, LSGAN, HINGE, WGAN_GP = BCELoss(), LeastSquaresLoss(), HingeLoss(), WassersteinGPLoss()
RELATIVISTIC = RelativisticAverageLoss()


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
