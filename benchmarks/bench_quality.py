"""Does the fast path cost quality? The same short Fashion-MNIST run in plain fp32 and with the fast path
(bf16 autocast, channels-last), two seeds each, measured by FID (Fashion-MNIST classifier) after every epoch.

    python benchmarks/bench_quality.py                       # CUDA when present, 32x32, 2 epochs, seeds 0 1
    python benchmarks/bench_quality.py --device cpu --epochs 1

The spread between seeds of the same setting is the noise the fast path's FID is judged against.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import torch

from dcgan import TrainConfig, train
from dcgan.device import pick_device

SETTINGS = {"fp32": dict(precision="fp32", channels_last="off"), "fast": dict(precision="bf16", channels_last="on")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-n", type=int, default=2000)
    parser.add_argument("--checkpoints-dir", default="", help="where the classifier is cached (default: repo's)")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"{datetime.date.today()}  device {device}  torch {torch.__version__}  Fashion-MNIST "
          f"{args.image_size}x{args.image_size}, {args.epochs} epochs, FID N={args.eval_n} a side")
    print(f"{'setting':<6} {'seed':>4} {'seconds':>8}  FID per epoch")
    with tempfile.TemporaryDirectory() as work:
        for name, speed in SETTINGS.items():
            for seed in args.seeds:
                cfg = TrainConfig(data="fashion-mnist", image_size=args.image_size, epochs=args.epochs, seed=seed,
                                  eval_every=1, eval_n=args.eval_n, eval_features="classifier",
                                  device=args.device, run=f"quality-{name}-{seed}",
                                  samples_dir=str(Path(work) / "samples"), checkpoints_dir=args.checkpoints_dir,
                                  progress=False, overwrite=True, **speed)
                started = time.perf_counter()
                state = train(cfg, log=lambda line: None)
                fids = [row["fid"] for row in state.history if row["kind"] == "epoch"]
                print(f"{name:<6} {seed:>4} {time.perf_counter() - started:>8.1f}  "
                      + "  ".join(f"{fid:.2f}" for fid in fids), flush=True)


if __name__ == "__main__":
    main()
