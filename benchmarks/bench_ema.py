"""Which moving average of G draws best, and does it need statistics of its own? One Fashion-MNIST run (32x32, the
set-up command's recipe) keeps several averages of G side by side, one per warm-up; after each epoch every one is
measured by FID (Fashion-MNIST classifier, N images a side) with BatchNorm statistics of its own weights, beside G
itself, G with recomputed statistics, and the previous average (warm-up (1 + t) / (10 + t)) with G's statistics.

    python benchmarks/bench_ema.py --seed 0 --epochs 3
    python benchmarks/bench_ema.py --seed 1 --epochs 4 --raw-at 888,900,912,924   # G's FID at a few steps too

One JSON line per epoch (and per --raw-at step). Half-lives are in images: hl2k = 2,000 images; r02 = at most 2 %
of the images G has trained on (the --ema-rampup warm-up) and at most 100,000.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform

import torch

from dcgan import TrainConfig, train
from dcgan.models.standing import batch_norms, settle_statistics


def half_life_decay(images: float, batch: int) -> float:
    """The per-step decay whose half-life is `images` images."""
    return 0.5 ** (batch / max(images, 1e-8))


def schedules(batch: int) -> dict:
    """Name -> decay at G's t-th step."""
    ramp = {f"r{round(share * 100):02d}": share for share in (0.01, 0.02, 0.05)}
    table = {"warmup10": lambda t: min(0.999, (1 + t) / (10 + t))}
    table.update({name: (lambda t, share=share: half_life_decay(min(100_000, share * batch * t), batch))
                  for name, share in ramp.items()})
    table.update({"r10_10k": lambda t: half_life_decay(min(10_000, 0.10 * batch * t), batch),
                  "r20_20k": lambda t: half_life_decay(min(20_000, 0.20 * batch * t), batch)})
    table.update({f"hl{kimg}k": (lambda t, kimg=kimg: half_life_decay(kimg * 1000, batch)) for kimg in (1, 2, 5, 10)})
    return table


class Averages:
    """Callbacks: every average follows G after each step; each epoch's end measures them all."""

    def __init__(self, batch: int, raw_at: set[int]):
        self.schedules, self.batch, self.raw_at = schedules(batch), batch, raw_at

    def on_train_start(self, state) -> None:
        self.averages = {name: copy.deepcopy(state.nets.generator).requires_grad_(False) for name in self.schedules}
        self.parameters = {name: list(average.parameters()) for name, average in self.averages.items()}

    def on_step_end(self, state) -> None:
        weights = list(state.nets.generator.parameters())
        with torch.no_grad():
            for name, decay in self.schedules.items():
                torch._foreach_lerp_(self.parameters[name], weights, 1.0 - decay(state.step))
        if state.step in self.raw_at:
            print(json.dumps({"step": state.step, "raw": self.fid(state, state.nets.generator)}), flush=True)

    def on_epoch_end(self, state) -> None:
        generator = state.nets.generator
        row = {"epoch": state.epoch, "raw": self.fid(state, generator)}
        settled = copy.deepcopy(generator)
        settle_statistics(settled, state.cfg.nz, self.batch)
        row["raw_settled"] = self.fid(state, settled)
        with_g_statistics = copy.deepcopy(self.averages["warmup10"])
        for average, own in zip(batch_norms(with_g_statistics), batch_norms(generator)):
            average.load_state_dict(own.state_dict())
        row["warmup10_Gstats"] = self.fid(state, with_g_statistics)
        for name, average in self.averages.items():
            settle_statistics(average, state.cfg.nz, self.batch)
            row[name] = self.fid(state, average)
        print(json.dumps(row), flush=True)

    @staticmethod
    def fid(state, generator) -> float:
        return round(state.setup.evaluator.measure(generator)["fid"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--eval-n", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=0, help="images of the dataset used (0 = all)")
    parser.add_argument("--raw-at", default="", help="comma-separated steps at which G's FID is measured too")
    parser.add_argument("--checkpoints-dir", default="", help="runs and the cached classifier (default: the repo's)")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; Fashion-MNIST 32x32, seed {args.seed}, FID N={args.eval_n:,} (classifier)", flush=True)
    cfg = TrainConfig(data="fashion-mnist", image_size=32, epochs=args.epochs, seed=args.seed,
                      limit=args.limit, eval_every=args.epochs, eval_n=args.eval_n, eval_features="classifier",
                      run=f"bench-ema-{args.seed}", checkpoints_dir=args.checkpoints_dir, progress=False,
                      overwrite=True)
    raw_at = {int(step) for step in args.raw_at.split(",") if step}
    train(cfg, [Averages(cfg.batch_size, raw_at)], log=lambda line: None)


if __name__ == "__main__":
    main()
