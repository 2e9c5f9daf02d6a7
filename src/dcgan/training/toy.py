"""The smallest GAN there is, from the course this package grew out of: G learns to draw the pattern "1010" (four
values, each 1 or 0 with a little noise) from one random number, in seconds on a CPU.

    G: 1 -> 3 -> 4, sigmoids       D: 4 -> 3 -> 1, sigmoids       loss: mean squared error       SGD, lr 0.01
Each step, on one pattern: (1) D learns to say 1 for a real pattern and 0 for G's, (2) G learns to make D say 1.
The same two updates as a DCGAN's step (step.py), without images: notebook 00 shows both losses and G's pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UserError


def toy_generator() -> nn.Sequential:
    # one random number (B, 1) -> 3 -> the four values (B, 4), each in (0, 1)
    return nn.Sequential(nn.Linear(1, 3), nn.Sigmoid(), nn.Linear(3, 4), nn.Sigmoid())


def toy_discriminator() -> nn.Sequential:
    # four values (B, 4) -> 3 -> the probability that they are a real pattern (B, 1)
    return nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 1), nn.Sigmoid())


@dataclass
class ToyRun:
    """A trained toy GAN and its history: a row every log_every steps (step, loss_D, loss_G, D_x, D_G_z)."""

    pattern: torch.Tensor  # the target, (4,): 1.0 where the pattern has a 1
    generator: nn.Module
    discriminator: nn.Module
    history: list[dict] = field(default_factory=list)

    def drawn(self, count: int = 8, seed: int = 1) -> torch.Tensor:
        """`count` patterns G draws now, (count, 4)."""
        with torch.no_grad():
            return self.generator(torch.rand(count, 1, generator=torch.Generator().manual_seed(seed)))


def real_patterns(pattern: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` noisy copies of the pattern: a 1 drawn from U(0.8, 1.0), a 0 from U(0.0, 0.2)."""
    return pattern * 0.8 + 0.2 * torch.rand(count, len(pattern), generator=generator)


def train_toy_gan(pattern: str = "1010", steps: int = 10_000, lr: float = 0.01, seed: int = 0,
                  log_every: int = 100) -> ToyRun:
    """Train the toy GAN for `steps` steps of one pattern each (the same seed, the same run)."""
    if not pattern or set(pattern) - {"0", "1"}:
        raise UserError(f"pattern = {pattern!r:.20}: use a string of 0s and 1s, such as \"1010\"")
    if steps < 1 or log_every < 1 or not lr > 0:
        raise UserError("steps and log_every must be at least 1, and lr positive")
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed + 1)
    target = torch.tensor([float(bit) for bit in pattern])
    generator, discriminator = toy_generator(), toy_discriminator()
    if len(pattern) != 4:  # (the course's pattern has four values; another length resizes the output layers)
        generator[2], discriminator[0] = nn.Linear(3, len(pattern)), nn.Linear(len(pattern), 3)
    opt_g, opt_d = (torch.optim.SGD(net.parameters(), lr=lr) for net in (generator, discriminator))
    mse, real_label, fake_label = nn.MSELoss(), torch.ones(1, 1), torch.zeros(1, 1)
    run = ToyRun(target, generator, discriminator)
    for step in range(1, steps + 1):
        real, fake = real_patterns(target, 1, rng), generator(torch.rand(1, 1, generator=rng))
        # (1) D: 1 for the real pattern, 0 for G's
        d_real, d_fake = discriminator(real), discriminator(fake.detach())
        loss_d = mse(d_real, real_label) + mse(d_fake, fake_label)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # (2) G: make D say 1 for its pattern
        loss_g = mse(discriminator(fake), real_label)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % log_every == 0:
            run.history.append({"step": step, "loss_D": loss_d.item(), "loss_G": loss_g.item(),
                                "D_x": d_real.item(), "D_G_z": d_fake.item()})
    return run
