"""The recommended recipe against the pytorch/examples recipe for the same CPU time: both train on Fashion-MNIST at
32x32, one after the other in this process, each for as many whole epochs as fit in the budget; then both
generators (drawn in eval mode) are measured by FID in the Fashion-MNIST classifier's space.

    python benchmarks/bench_against_reference.py                      # budget: the set-up command's CPU time
    python benchmarks/bench_against_reference.py --budget 381 --threads 1

The reference is benchmarks/reference_dcgan.py at 32x32 with one channel, fed as pytorch/examples feeds MNIST:
torchvision's FashionMNIST, Resize(32), ToTensor, Normalize(0.5, 0.5), a DataLoader with 2 workers. Its CPU time
counts its workers (each epoch's are joined at the epoch's end). The goal: the recipe's FID at most half the
reference's.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
import torchvision.datasets as dset
import torchvision.transforms as transforms
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from recipe_study import BASE, Budget, train_within  # noqa: E402
from reference_dcgan import ReferenceTrainer  # noqa: E402

from dcgan import TrainConfig  # noqa: E402
from dcgan.data.sources import find_idx_files  # noqa: E402
from dcgan.metrics.features import Evaluator  # noqa: E402
from dcgan.presets import PRESETS  # noqa: E402
from dcgan.registry import DATASETS  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its joined children (the DataLoader's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class NoiseToImage(nn.Module):
    """The reference G as the evaluator calls a G: (N, nz) noise in, images out."""

    def __init__(self, network: nn.Module, nz: int):
        super().__init__()
        self.network, self.nz = network, nz

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.network(noise.view(-1, self.nz, 1, 1))


def fashion_mnist_for_torchvision(work: Path) -> Path:
    """A root where torchvision's FashionMNIST finds the four files (unpacked from the system's copy)."""
    found = find_idx_files([DATASETS.spec("fashion-mnist").source.system_folder], "train")
    if found is None:
        raise SystemExit("Fashion-MNIST not found: apt-get install dataset-fashion-mnist")
    raw = work / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in found + find_idx_files([found[0].parent], "test"):  # torchvision checks for all four
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as packed:
            (raw / path.name.removesuffix(".gz")).write_bytes(packed.read())
    return work


def train_reference(root: Path, budget: Budget, seed: int) -> tuple[nn.Module, int, float]:
    data = dset.FashionMNIST(root=str(root), download=False, transform=transforms.Compose([
        transforms.Resize(32), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]))
    loader = torch.utils.data.DataLoader(data, batch_size=128, shuffle=True, num_workers=2)
    trainer = ReferenceTrainer("", torch.device("cpu"), image_size=32, loader=loader, nc=1, seed=seed)
    started, epochs = cpu_seconds(), 0
    while True:
        trainer.run(len(loader))  # one epoch: its workers end with it
        epochs += 1
        used = cpu_seconds() - started
        if not budget.another_epoch_fits(used, epochs):
            return NoiseToImage(trainer.netG, trainer.nz), epochs, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=381.0, help="CPU seconds for each (default: the set-up "
                        "command's training, 5 epochs of the previous default, one thread; recipe_study --calibrate)")
    parser.add_argument("--preset", default="recommended", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints-dir", default="", help="the cached classifier (default: the repo's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = PRESETS[args.preset][1]
    print(f"{time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}; Fashion-MNIST 32x32; budget "
          f"{args.budget:.0f} CPU-s each; FID N={args.eval_n:,} in the classifier's space", flush=True)
    checkpoints = args.checkpoints_dir or "checkpoints"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        reference, ref_epochs, ref_cpu = train_reference(fashion_mnist_for_torchvision(work), Budget(args.budget),
                                                         args.seed)
        print(f"reference (pytorch/examples recipe): {ref_epochs} epochs in {ref_cpu:.0f} CPU-s", flush=True)
        loaded, meter = train_within(settings, args.budget, args.seed, "against-reference", checkpoints, work)
        ours = loaded.generator
        print(f"--preset {args.preset} ({settings}): {meter.epochs} epochs in {meter.used:.0f} CPU-s, "
              f"{loaded.weights} weights", flush=True)
        evaluator = Evaluator(TrainConfig(**BASE), args.eval_n, "classifier", torch.device("cpu"), Path(checkpoints),
                              progress=False, log=lambda line: None)
        reference_fid, our_fid = evaluator.measure(reference)["fid"], evaluator.measure(ours)["fid"]
    print(f"FID reference {reference_fid:.1f}   --preset {args.preset} {our_fid:.1f}   ratio "
          f"{our_fid / reference_fid:.3f} (goal: at most 0.5)")


if __name__ == "__main__":
    main()
