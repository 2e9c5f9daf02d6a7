"""The reference trainer: the pytorch/examples `dcgan/main.py` recipe, step for step, for speed comparisons.

fp32; G and D as in that script (D ends in Sigmoid); BCELoss; torchvision ImageFolder + DataLoader with 2
workers decoding the image files every epoch; batch 128, ngf = ndf = 64, nz = 100, Adam(2e-4, 0.5, 0.999);
every step reads D(x), D(G(z)) before and after D's update, loss_D and loss_G with .item() and formats the
log line (discarded here instead of printed, so the terminal does not set the pace).
"""

from __future__ import annotations

import time

import torch
import torchvision.datasets as dset
import torchvision.transforms as transforms
from torch import nn

STAGES = {32: 3, 64: 4}  # image side -> convolution stages between 4x4 and the image (the script's: 64)


class ReferenceGenerator(nn.Module):
    """64x64 as in the script; 32x32 drops its first up-sampling stage (ngf * 8), as DCGANs for 32x32 images do."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64):
        super().__init__()
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf][4 - STAGES[image_size]:]
        layers = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]),
                  nn.ReLU(True)]  # widths[0] x 4 x 4
        for wide, narrow in zip(widths, widths[1:]):  # each stage doubles the side
            layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]  # nc x image_size^2
        self.main = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.main(noise)


class ReferenceDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3, image_size: int = 64):
        super().__init__()
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8][:STAGES[image_size]]
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]  # ndf x side/2
        for narrow, wide in zip(widths, widths[1:]):  # each stage halves the side
            layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]  # 1 x 1 x 1
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).view(-1, 1).squeeze(1)


def weights_init(module: nn.Module) -> None:
    name = module.__class__.__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def reference_loader(folder: str, image_size: int = 64, batch_size: int = 128, workers: int = 2):
    dataset = dset.ImageFolder(root=folder, transform=transforms.Compose([
        transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


class ReferenceTrainer:
    """Owns the networks, optimizers and loader; `run(steps)` trains that many steps, restarting epochs."""

    def __init__(self, folder: str, device: torch.device, image_size: int = 64, batch_size: int = 128,
                 nz: int = 100, workers: int = 2, seed: int = 0, loader=None, nc: int = 3):
        torch.manual_seed(seed)
        self.device, self.nz = device, nz
        self.loader = loader or reference_loader(folder, image_size, batch_size, workers)
        self.netG = ReferenceGenerator(nz, nc=nc, image_size=image_size).to(device)
        self.netD = ReferenceDiscriminator(nc=nc, image_size=image_size).to(device)
        self.netG.apply(weights_init)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.batches = iter(())
        self.log_line = ""

    def next_batch(self) -> torch.Tensor:
        try:
            return next(self.batches)[0]
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)[0]

    def step(self) -> None:
        real_label, fake_label = 1.0, 0.0
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real_cpu = self.next_batch().to(self.device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=self.device)
        output = self.netD(real_cpu)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, self.nz, 1, 1, device=self.device)
        fake = self.netG(noise)
        label.fill_(fake_label)
        output = self.netD(fake.detach())
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(real_label)
        output = self.netD(fake)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        self.log_line = (f"Loss_D: {errD.item():.4f} Loss_G: {errG.item():.4f} D(x): {D_x:.4f} "
                         f"D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")

    def run(self, steps: int) -> float:
        """Train `steps` steps; returns the seconds they took (the device synchronised at the end)."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started
