"""One training step, as in the DCGAN paper and pytorch/examples: (1) update D, then (2) update G.

    z ~ N(0, 1);  fake = G(z)
    (1) D: minimise the loss's D term on real images and on `fake` (for the DCGAN loss: maximise
        log D(x) + log(1 - D(G(z)))), plus the loss's own penalty (WGAN-GP, R1)
    (2) G, every n_critic-th step: minimise the loss's G term on D(fake) (maximise log D(G(z))), D frozen;
        then move the moving average of G (--ema)
The loss (models/losses.py) says what each network minimises. The step, the loss and the networks report their
statistics by name (models/statistics.py): loss_D, loss_G, D_x and D_G_z here.

The step can be captured in a CUDA graph and replayed (execution.py): it reads no value back to the host, every
value that changes between steps lives in a device tensor (the noise stream, Adam's step count), and gradients
are zeroed in place when graphs replay (a graph keeps its tensors).
"""

from __future__ import annotations

import torch

from ..models.statistics import Statistics, report, reporting
from .augment import diff_augment
from .ema import ema_decay, g_updates, move_ema
from .state import TrainState


def train_step(state: TrainState, real: torch.Tensor, real_labels: torch.Tensor | None = None) -> Statistics:
    """One D update, and one G update every n_critic steps; returns what was reported, on the device."""
    setup, nets = state.setup, state.nets
    g_step = is_g_step(state)  # (a CUDA graph is captured for each kind of step)
    real_labels = () if real_labels is None else (real_labels,)  # conditional networks take labels too
    with reporting(setup.device) as reported:
        noise, fake_labels = draw_noise(state, real.shape[0], conditional=bool(real_labels))
        with setup.plan.autocast(), torch.set_grad_enabled(g_step):  # no G graph where no G update follows
            fake = nets.g_forward(noise, *fake_labels)
        real_out, fake_out = update_d(state, real, fake.detach(), real_labels, fake_labels)
        if g_step:
            update_g(state, fake, real_out, fake_labels)
        else:  # G's loss on this batch, for the history
            report("loss_G", setup.loss.g_loss(real_out, fake_out))
    return reported.statistics()


def update_d(state: TrainState, real: torch.Tensor, fake: torch.Tensor, real_labels: tuple[torch.Tensor, ...],
             fake_labels: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(1) Update D on real images and generated ones; returns its outputs on both (detached)."""
    setup, nets, loss, cfg = state.setup, state.nets, state.setup.loss, state.setup.cfg
    with setup.plan.autocast():
        real, fake = augmented(state, real), augmented(state, fake)
        real_out = nets.d_forward(real, *real_labels).float()  # (B,) logits or scores
        fake_out = nets.d_forward(fake, *fake_labels).float()
        loss_d = loss.d_loss(real_out, fake_out, cfg.real_label, cfg.fake_label)
        penalty = loss.d_penalty(lambda images: nets.discriminator(images, *real_labels), real, fake,
                                 state.progress.noise_rng)
        if penalty is not None:
            loss_d = loss_d + penalty
    nets.opt_d.zero_grad(set_to_none=not setup.plan.cuda_graphs)
    loss_d.backward()
    nets.opt_d.step()
    real_out, fake_out = real_out.detach(), fake_out.detach()
    report("loss_D", loss_d)
    report("D_x", loss.mean_output(real_out))  # D's mean output on real images: a probability, or a score
    report("D_G_z", loss.mean_output(fake_out))
    return real_out, fake_out


def update_g(state: TrainState, fake: torch.Tensor, real_out: torch.Tensor,
             fake_labels: tuple[torch.Tensor, ...]) -> None:
    """(2) Update G through D, whose weights stay as they are; then the moving average of G follows it."""
    setup, nets = state.setup, state.nets
    nets.discriminator.requires_grad_(False)  # gradients flow through D, none are kept for D's weights
    with setup.plan.autocast():
        fake_out = nets.d_forward_for_g(augmented(state, fake), *fake_labels).float()
    loss_g = setup.loss.g_loss(real_out, fake_out)
    nets.opt_g.zero_grad(set_to_none=not setup.plan.cuda_graphs)
    loss_g.backward()
    nets.opt_g.step()
    nets.discriminator.requires_grad_(True)
    if nets.ema_generator is not None:
        share = (1.0 - ema_decay(setup.cfg.ema, setup.cfg.ema_rampup, g_updates(nets.opt_g))).float()
        move_ema(nets.ema_generator, nets.generator, share)
    report("loss_G", loss_g)


def is_g_step(state: TrainState) -> bool:
    """Whether the step about to run (step number state.step + 1) also updates G."""
    return (state.step + 1) % state.setup.cfg.n_critic == 0


def draw_noise(state: TrainState, batch: int, conditional: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """z for the batch, and in a conditional run the classes G is asked for (random, as many as the images)."""
    setup, rng = state.setup, state.progress.noise_rng
    noise = torch.randn(batch, setup.cfg.nz, device=setup.device, generator=rng)
    if not conditional:
        return noise, ()
    return noise, (torch.randint(setup.cfg.classes, (batch,), device=setup.device, generator=rng),)


def augmented(state: TrainState, images: torch.Tensor) -> torch.Tensor:
    """The images as D sees them: changed by DiffAugment's policies (--diffaugment), or as they are."""
    policies = state.setup.policies
    return diff_augment(images, policies, state.progress.noise_rng) if policies else images
