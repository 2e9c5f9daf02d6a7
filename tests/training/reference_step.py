"""An independent training step, written as pytorch/examples' dcgan/main.py writes it ("(1) Update D network",
"(2) Update G network"), for the losses and stabilisers the package has, with no code of the package: what the
package's step must compute, bit for bit, from the same weights, batches and random stream."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def d_loss(name, real_out, fake_out, real_label, fake_label):
    if name in ("bce", "r1"):
        return bce(real_out, real_label) + bce(fake_out, fake_label)
    if name == "hinge":
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()
    if name == "wgan-gp":
        return fake_out.mean() - real_out.mean()
    raise ValueError(name)


def g_loss(name, fake_out):
    return bce(fake_out, 1.0) if name in ("bce", "r1") else -fake_out.mean()


def reference_step(G, D, opt_g, opt_d, real, nz, rng, loss, real_label=1.0, fake_label=0.0, weight=10.0,
                   g_step=True, ema=None, decay=0.0, g_updates=0, rampup=0.0):
    """One step; returns the number of G updates so far."""
    batch = real.shape[0]
    noise = torch.randn(batch, nz, generator=rng)
    with torch.set_grad_enabled(g_step):
        fake = G(noise)

    # (1) Update D network
    real_out, fake_out = D(real).float(), D(fake.detach()).float()
    err_d = d_loss(loss, real_out, fake_out, real_label, fake_label)
    if loss == "wgan-gp":  # the gradient penalty at points between real and generated images
        mixing = torch.rand(batch, generator=rng).view(-1, 1, 1, 1)
        between = (mixing * real + (1 - mixing) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(between).float().sum(), between, create_graph=True)
        err_d = err_d + weight * (grad.flatten(1).norm(dim=1) - 1).square().mean()
    if loss == "r1":  # the R1 penalty at real images
        inputs = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(inputs).float().sum(), inputs, create_graph=True)
        err_d = err_d + weight / 2 * grad.flatten(1).square().sum(dim=1).mean()
    opt_d.zero_grad()
    err_d.backward()
    opt_d.step()
    if not g_step:
        return g_updates

    # (2) Update G network
    D.requires_grad_(False)
    err_g = g_loss(loss, D(fake).float())
    opt_g.zero_grad()
    err_g.backward()
    opt_g.step()
    D.requires_grad_(True)
    g_updates += 1
    if ema is not None:  # the moving average of G's weights, its half-life at most `rampup` x the images so far
        share = 1.0 - min(decay, 0.5 ** (1.0 / (rampup * g_updates)) if rampup else decay)
        with torch.no_grad():
            for average, weight_ in zip(ema.parameters(), G.parameters()):
                average.lerp_(weight_, torch.tensor(share, dtype=torch.float32))
            # BatchNorm's running statistics stay the average's own (computed when it draws)
    return g_updates
