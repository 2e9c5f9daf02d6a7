"""One training step: a D step, and a G step every n_critic steps, with no host sync.

`train_step` runs it eagerly. The step is split so that a CUDA graph can hold it (training/graphs.py):
`begin_step` sets the values that change from step to step (the EMA share) in device tensors, outside any
graph; `step_body` is the work itself, the same on every call for the same `g_step`.
"""

from __future__ import annotations

import torch

from .augment import diff_augment
from .ema import ema_decay, move_ema
from .losses import discriminator_loss, generator_loss, gradient_penalty, mean_output
from .state import TrainState


def train_step(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None = None) -> torch.Tensor:
    """One D step, and one G step every n_critic steps; returns [loss_D, loss_G, D(x), D(G(z))] on the device
    (no host sync). loss_G is the G step's loss, or on steps without one, G's loss on this batch."""
    begin_step(state)
    return step_body(state, real, real_labels, g_step=is_g_step(state))


def is_g_step(state: TrainState) -> bool:
    """Whether the step about to run (step number state.step + 1) also trains G."""
    return (state.step + 1) % state.cfg.n_critic == 0


def begin_step(state: TrainState) -> None:
    """Put this step's changing values where the step reads them: the EMA's share of G's weights (one small
    kernel, no sync). Called before every step, eager or replayed."""
    if state.ema_generator is not None and is_g_step(state):
        updates = (state.step + 1) // state.cfg.n_critic
        state.ema_share.fill_(1.0 - ema_decay(state.cfg.ema, updates))


def step_body(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None, g_step: bool
              ) -> torch.Tensor:
    """The step's work. Capturable: no host sync, no Python value that changes between steps, gradients zeroed
    in place when the plan replays graphs (a graph must keep its tensors)."""
    cfg, G, D = state.cfg, state.g_forward, state.d_forward
    batch, rng = real.shape[0], state.noise_rng
    keep_grads = state.plan.cuda_graphs
    noise = torch.randn(batch, cfg.nz, device=state.device, generator=rng)
    real_args, fake_args = (), ()  # the labels conditional networks take with the images
    if real_labels is not None:
        real_args = (real_labels,)
        fake_args = (torch.randint(cfg.classes, (batch,), device=state.device, generator=rng),)
    policies = cfg.augmentations()
    with state.plan.autocast():
        with torch.set_grad_enabled(g_step):  # a G that no backward follows builds no graph (DDP needs that)
            fake = G(noise, *fake_args)
        real_seen, fake_seen = diff_augment(real, policies, rng), diff_augment(fake.detach(), policies, rng)
        real_out, fake_out = D(real_seen, *real_args).float(), D(fake_seen, *fake_args).float()
        loss_d = discriminator_loss(real_out, fake_out, cfg.real_label, cfg.fake_label, cfg.loss)
        if cfg.loss == "wgan-gp":  # eager D: the penalty differentiates twice
            mixing = torch.rand(batch, device=state.device, generator=rng)
            penalty = gradient_penalty(lambda images: state.discriminator(images, *real_args), real_seen, fake_seen,
                                       mixing)
            loss_d = loss_d + cfg.gp_weight * penalty
    state.opt_d.zero_grad(set_to_none=not keep_grads)
    loss_d.backward()
    state.opt_d.step()

    if not g_step:
        loss_g = generator_loss(fake_out.detach(), cfg.loss)
    else:
        state.discriminator.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        with state.plan.autocast():
            fake_out_for_g = state.d_forward_for_g(diff_augment(fake, policies, rng), *fake_args).float()
        loss_g = generator_loss(fake_out_for_g, cfg.loss)
        state.opt_g.zero_grad(set_to_none=not keep_grads)
        loss_g.backward()
        state.opt_g.step()
        state.discriminator.requires_grad_(True)
        if state.ema_generator is not None:
            move_ema(state.ema_generator, state.generator, state.ema_share)

    with torch.no_grad():
        return torch.stack([loss_d.detach(), loss_g.detach(), mean_output(real_out, cfg.loss),
                            mean_output(fake_out, cfg.loss)])
