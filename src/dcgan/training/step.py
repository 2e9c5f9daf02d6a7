"""One training step: a D step, and a G step every n_critic steps, with no host sync.

`train_step` runs it eagerly. The step is split so that a CUDA graph can hold it (training/execution.py):
`begin_step` sets the values that change from step to step (the EMA share) in device tensors, outside any
graph; `step_body` is the work itself, the same on every call for the same `g_step`. The step reports its
statistics by name (history.STATISTICS says how each is shown).
"""

from __future__ import annotations

import torch

from ..models.losses import gradient_penalty
from .augment import diff_augment
from .ema import ema_decay, move_ema
from .state import Statistics, TrainState


def train_step(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None = None) -> Statistics:
    """One D step, and one G step every n_critic steps; returns its statistics on the device (no host sync):
    loss_D, loss_G (the G step's loss, or on steps without one, G's loss on this batch), D_x and D_G_z (D's mean
    outputs on real and generated images)."""
    begin_step(state)
    return step_body(state, real, real_labels, g_step=is_g_step(state))


def is_g_step(state: TrainState) -> bool:
    """Whether the step about to run (step number state.step + 1) also trains G."""
    return (state.step + 1) % state.cfg.n_critic == 0


def begin_step(state: TrainState) -> None:
    """Put this step's changing values where the step reads them: the EMA's share of G's weights (one small
    kernel, no sync). Called before every step, eager or replayed."""
    if state.nets.ema_share is not None and is_g_step(state):
        updates = (state.step + 1) // state.cfg.n_critic
        state.nets.ema_share.fill_(1.0 - ema_decay(state.cfg.ema, updates))


def step_body(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None, g_step: bool) -> Statistics:
    """The step's work. Capturable: no host sync, no Python value that changes between steps, gradients zeroed
    in place when the plan replays graphs (a graph must keep its tensors)."""
    setup, nets = state.setup, state.nets
    cfg, loss, device, plan = setup.cfg, setup.loss, setup.device, setup.plan
    batch, rng = real.shape[0], state.progress.noise_rng
    keep_grads = plan.cuda_graphs
    noise = torch.randn(batch, cfg.nz, device=device, generator=rng)
    real_args, fake_args = (), ()  # the labels conditional networks take with the images
    if real_labels is not None:
        real_args = (real_labels,)
        fake_args = (torch.randint(cfg.classes, (batch,), device=device, generator=rng),)
    policies = cfg.augmentations()
    with plan.autocast():
        with torch.set_grad_enabled(g_step):  # a G that no backward follows builds no graph (DDP needs that)
            fake = nets.g_forward(noise, *fake_args)
        real_seen, fake_seen = diff_augment(real, policies, rng), diff_augment(fake.detach(), policies, rng)
        real_out = nets.d_forward(real_seen, *real_args).float()
        fake_out = nets.d_forward(fake_seen, *fake_args).float()
        loss_d = loss.d_loss(real_out, fake_out, cfg.real_label, cfg.fake_label)
        if loss.penalised:  # eager D: the penalty differentiates twice
            mixing = torch.rand(batch, device=device, generator=rng)
            penalty = gradient_penalty(lambda images: nets.discriminator(images, *real_args), real_seen, fake_seen,
                                       mixing)
            loss_d = loss_d + cfg.gp_weight * penalty
    nets.opt_d.zero_grad(set_to_none=not keep_grads)
    loss_d.backward()
    nets.opt_d.step()

    if not g_step:
        loss_g = loss.g_loss(real_out.detach(), fake_out.detach())
    else:
        nets.discriminator.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        with plan.autocast():
            fake_out_for_g = nets.d_forward_for_g(diff_augment(fake, policies, rng), *fake_args).float()
        loss_g = loss.g_loss(real_out.detach(), fake_out_for_g)
        nets.opt_g.zero_grad(set_to_none=not keep_grads)
        loss_g.backward()
        nets.opt_g.step()
        nets.discriminator.requires_grad_(True)
        if nets.ema_generator is not None:
            move_ema(nets.ema_generator, nets.generator, nets.ema_share)

    with torch.no_grad():  # tensors of their own, not views of the losses: what a replay returns is its own result
        return {"loss_D": loss_d.detach().clone(), "loss_G": loss_g.detach().clone(),
                "D_x": loss.mean_output(real_out), "D_G_z": loss.mean_output(fake_out)}
