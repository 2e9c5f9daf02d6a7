"""Which recipe gives the best images for the set-up command's CPU time? Each candidate trains on Fashion-MNIST at
32x32 for as many whole epochs as fit in the same CPU budget, then its generator (the moving average where the
recipe keeps one) is measured by FID in the Fashion-MNIST classifier's space. One JSON line per run.

    python benchmarks/recipe_study.py --calibrate                     # the budget: the set-up command's CPU time
    python benchmarks/recipe_study.py --budget 420 --only base,w32 --seeds 0 1 --out study.jsonl
    python benchmarks/recipe_study.py --table study.jsonl             # the runs as a Markdown table

The budget is CPU time (all threads of the process) spent training: from the first step to the end of the last
epoch, its grids and checkpoints included; decoding the dataset and the FID measurement are not counted. A run
stops after the epoch past which one more epoch of the same cost would exceed the budget by more than 5 %.
Run candidates one thread each (--threads 1, the default) and two at a time on a 2-core machine: CPU time is
then what each one used, whatever the other did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from dcgan import TrainConfig, train
from dcgan.metrics.features import Evaluator
from dcgan.models.runs import LoadedRun, RunReference

SETUP_EPOCHS = 5  # the set-up command: python -m dcgan train --data fashion-mnist --image-size 32 --epochs 5
BASE = dict(data="fashion-mnist", image_size=32)
CANDIDATES: dict[str, dict] = {  # name -> the settings it changes from the set-up command's
    "base": {},
    "b64": {"batch_size": 64},
    "w48": {"ngf": 48, "ndf": 48},
    "w32": {"ngf": 32, "ndf": 32},
    "w32-b64": {"ngf": 32, "ndf": 32, "batch_size": 64},
    "w32-ema": {"ngf": 32, "ndf": 32, "ema": 0.999},
    "w32-b64-ema": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999},
    "w24-b64-ema": {"ngf": 24, "ndf": 24, "batch_size": 64, "ema": 0.999},
    "g48d32-b64-ema": {"ngf": 48, "ndf": 32, "batch_size": 64, "ema": 0.999},
    "w32-b64-ema-lr3": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999, "lr": 3e-4},
    "w32-b64-ema-daug": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999, "diffaugment": "translation"},
    "w32-b64-ema-daug-lr3": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999, "diffaugment": "translation",
                             "lr": 3e-4},
    "w32-b64-ema-r1": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999, "loss": "r1", "r1_gamma": 0.1},
    "w32-b64-ema-hinge": {"ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999, "loss": "hinge"},
    "resnet-w32-b64-ema": {"arch": "resnet", "ngf": 32, "ndf": 32, "batch_size": 64, "ema": 0.999},
    "w32-b32-ema": {"ngf": 32, "ndf": 32, "batch_size": 32, "ema": 0.999},
}


class BudgetSpent(Exception):
    """Raised at an epoch's end when one more epoch would not fit in the budget."""


class Budget:
    """Counts the process's CPU time from the first step; stops the run when the next epoch would not fit."""

    def __init__(self, seconds: float):
        self.seconds, self.used, self.epochs = seconds, 0.0, 0

    def another_epoch_fits(self, used: float, epochs: int) -> bool:
        """Whether one more epoch of the mean cost so far keeps the total within 5 % of the budget."""
        return used + used / epochs <= self.seconds * 1.05

    def on_train_start(self, state) -> None:
        self.started = time.process_time()

    def on_epoch_end(self, state) -> None:
        self.used, self.epochs = time.process_time() - self.started, state.epoch
        if not self.another_epoch_fits(self.used, self.epochs):
            raise BudgetSpent()


def train_within(settings: dict, budget: float, seed: int, run: str, checkpoints: str, work: Path,
                 max_epochs: int = 200) -> tuple[LoadedRun, Budget]:
    """Train BASE + `settings` for as many whole epochs as fit in `budget` CPU-seconds; the run's last checkpoint
    loaded (its moving average where it keeps one) and the budget's count."""
    cfg = TrainConfig(**{**BASE, **settings}, epochs=max_epochs, seed=seed, run=run, samples_dir=str(work / "samples"),
                      checkpoints_dir=checkpoints, progress=False, overwrite=True, device="cpu")
    meter = Budget(budget)
    try:
        train(cfg, [meter], log=lambda line: None)
    except BudgetSpent:
        pass
    return RunReference(run=run, checkpoints_dir=checkpoints).load(), meter


def run_candidate(name: str, seed: int, budget: float, work: Path, evaluator_for, args) -> dict:
    started = time.perf_counter()
    loaded, meter = train_within(CANDIDATES[name], budget, seed, f"study-{name}-{seed}", args.checkpoints_dir, work,
                                 args.max_epochs)
    wall = time.perf_counter() - started
    measured = evaluator_for(loaded.cfg).measure(loaded.generator)
    return {"candidate": name, "seed": seed, "settings": CANDIDATES[name], "epochs": meter.epochs,
            "cpu_s": round(meter.used, 1), "wall_s": round(wall, 1), "budget_s": budget,
            "weights": loaded.weights, "fid": round(measured["fid"], 2), "eval_n": args.eval_n}


def calibrate(args) -> float:
    """The set-up command's training CPU time: 5 epochs of the base recipe, estimated from its first epoch."""
    cfg = TrainConfig(**BASE, epochs=1, run=f"study-calibration-{os.getpid()}", checkpoints_dir=args.checkpoints_dir,
                      samples_dir=tempfile.mkdtemp(), progress=False, overwrite=True, device="cpu")
    meter = Budget(float("inf"))
    train(cfg, [meter], log=lambda line: None)
    return meter.used * SETUP_EPOCHS


def flags_of(settings: dict) -> str:
    return " ".join(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float) else
                    f"--{name.replace('_', '-')} {value}" for name, value in settings.items()) or "(the set-up command)"


def table(path: str) -> str:
    """The study's Markdown table from its JSON lines: one row per candidate, best mean FID first."""
    runs: dict[str, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        runs.setdefault(row["candidate"], []).append(row)
    seeds = sorted({row["seed"] for rows in runs.values() for row in rows})
    lines = ["| candidate | flags | epochs | CPU-s | " + " | ".join(f"FID seed {seed}" for seed in seeds) + " | mean |",
             "|---|---|---:|---:|" + "---:|" * (len(seeds) + 1)]
    mean = {name: sum(row["fid"] for row in rows) / len(rows) for name, rows in runs.items()}
    for name in sorted(runs, key=mean.get):
        rows, by_seed = runs[name], {row["seed"]: row["fid"] for row in runs[name]}
        epochs = "/".join(str(row["epochs"]) for row in rows)
        cpu = "/".join(f"{row['cpu_s']:.0f}" for row in rows)
        fids = " | ".join(f"{by_seed[seed]:.1f}" if seed in by_seed else "" for seed in seeds)
        lines.append(f"| {name} | `{flags_of(rows[0]['settings'])}` | {epochs} | {cpu} | {fids} | {mean[name]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=0.0, help="CPU seconds per run (0: --calibrate first)")
    parser.add_argument("--calibrate", action="store_true", help="print the set-up command's CPU time and stop")
    parser.add_argument("--only", default="", help="comma-separated candidates (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-n", type=int, default=10_000, help="images a side for FID")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--checkpoints-dir", default="", help="runs and the cached classifier (default: the repo's)")
    parser.add_argument("--out", default="", help="append the JSON lines to this file too")
    parser.add_argument("--table", default="", help="print the Markdown table of a file of JSON lines and stop")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    torch.set_num_threads(args.threads)
    print(f"# {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}, {args.threads} thread(s); "
          f"torch {torch.__version__}; Fashion-MNIST 32x32; FID N={args.eval_n:,} (classifier features)", flush=True)
    budget = args.budget or calibrate(args)
    if args.calibrate:
        print(json.dumps({"setup_command_cpu_s": round(budget, 1)}), flush=True)
        return
    evaluators = {}

    def evaluator_for(cfg):
        if "fm" not in evaluators:
            evaluators["fm"] = Evaluator(cfg, args.eval_n, "classifier", torch.device("cpu"),
                                         Path(args.checkpoints_dir or "checkpoints"), progress=False,
                                         log=lambda line: None)
        return evaluators["fm"]

    names = args.only.split(",") if args.only else list(CANDIDATES)
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            for name in names:
                row = run_candidate(name, seed, budget, Path(work), evaluator_for, args)
                line = json.dumps(row)
                print(line, flush=True)
                if args.out:
                    with open(args.out, "a") as out:
                        out.write(line + "\n")


if __name__ == "__main__":
    main()
