"""Multi-process training (torchrun + DDP): per-rank throughput and what the gradient all-reduce costs a step.

    python benchmarks/bench_ddp.py                          # GPUs when present: 1 and all of them
    python benchmarks/bench_ddp.py --device cpu --processes 1 2 --batch 64 --steps 10

For each process count N it launches `torchrun --nproc_per_node N` on this same file; every rank trains the
64x64 DCGAN (nz 100, ngf = ndf = 64) on generated shapes with a global batch of --batch images (--batch / N per
rank) and times --steps steps after warm-up. Each rank also times an all-reduce of a buffer the size of G's and
D's gradients (fp32), the bytes DDP moves every step. The single process without torchrun is the reference of the
same run. Printed: images/s in all and per rank, the ratio to the reference, the all-reduce time, and on paper
the bytes each rank sends per step in a ring all-reduce: 2 (N - 1) / N x the gradient bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from dcgan.config import TrainConfig
from dcgan.training.distributed import joined_world
from dcgan.training.start import start_run
from dcgan.training.step import train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_bytes(state) -> int:
    return sum(p.numel() * 4 for net in (state.nets.generator, state.nets.discriminator) for p in net.parameters())


def time_all_reduce(nbytes: int, device: torch.device, repeats: int = 10) -> float:
    """Median seconds of one all-reduce of `nbytes` of fp32 (0 on one process)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return 0.0
    buffer = torch.ones(nbytes // 4, device=device)
    times = []
    for _ in range(repeats + 2):
        sync(device)
        dist.barrier()
        started = time.perf_counter()
        dist.all_reduce(buffer)
        sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def rank_job(args) -> dict:
    """Train --steps timed steps in this process (a torchrun rank, or the reference alone)."""
    cfg = TrainConfig(data="synthetic", image_size=64, batch_size=args.batch, epochs=1, run="bench",
                      data_dir=args.work + "/data", samples_dir=args.work + "/samples", device=args.device,
                      checkpoints_dir=args.work + "/checkpoints", progress=False, overwrite=True)
    with joined_world(cfg.device) as (world, device):
        state = start_run(cfg, log=lambda line: None, world=world, device=device)
        images = args.batch * (args.steps + args.warmup)
        order = world.shard(torch.randperm(len(state.setup.data))[:images], args.batch)
        batches = state.setup.batches.epoch(order, None, world.local_batch(args.batch))
        for _ in range(args.warmup):
            train_step(state, next(batches))
            state.progress.step += 1
        sync(device)
        world.barrier()
        started = time.perf_counter()
        for _ in range(args.steps):
            train_step(state, next(batches))
            state.progress.step += 1
        sync(device)
        seconds = time.perf_counter() - started
        reduce_seconds = time_all_reduce(gradient_bytes(state), device)
        return {"rank": world.rank, "world": world.size, "seconds": seconds, "all_reduce_s": reduce_seconds,
                "gradient_bytes": gradient_bytes(state), "device": str(device), "plan": state.setup.plan.describe()}


def launch(processes: int, args, out: Path) -> list[dict]:
    """Run this file under torchrun with `processes` ranks (0: alone, the reference); their results."""
    flags = ["--worker", "--out", str(out), "--device", args.device, "--batch", str(args.batch),
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--work", args.work]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // max(processes, 1)))}
    if processes == 0:
        command = [sys.executable, __file__, *flags]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   __file__, *flags]
    for old in out.glob("rank*.json"):
        old.unlink()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return [json.loads(path.read_text()) for path in sorted(out.glob("rank*.json"))]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def throughput(processes: int, args, out: Path) -> tuple[float, list[dict]]:
    """Median images/s (all ranks together) over --repeats launches, and the last launch's rank results."""
    speeds = []
    for _ in range(args.repeats):
        ranks = launch(processes, args, out)
        speeds.append(args.batch * args.steps / max(rank["seconds"] for rank in ranks))
    return statistics.median(speeds), ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--processes", type=int, nargs="+", default=None, help="process counts to measure")
    parser.add_argument("--batch", type=int, default=256, help="global batch (default: 256)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="launches per configuration; the median counts")
    parser.add_argument("--work", default="", help="folder for the generated data (default: a temporary one)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = rank_job(args)
        Path(args.out, f"rank{result['rank']}.json").write_text(json.dumps(result))
        return
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    counts = args.processes or sorted({1, torch.cuda.device_count() if cuda else 2})
    with tempfile.TemporaryDirectory() as scratch:
        args.work = args.work or scratch
        out = Path(scratch, "results")
        out.mkdir()
        device = torch.cuda.get_device_name(0) if cuda else f"{cpu_name()}, {os.cpu_count()} cores"
        print(f"device: {device}; torch {torch.__version__}; DCGAN 64x64, global batch {args.batch}, "
              f"{args.steps} timed steps after {args.warmup}, median of {args.repeats} launches")
        base, (reference,) = throughput(0, args, out)
        print(f"reference (one process, no torchrun, {reference['plan']}): {base:,.0f} img/s")
        print("processes | img/s all | img/s per rank | vs reference | all-reduce ms | sent per rank per step (ring)")
        for count in counts:
            total, ranks = throughput(count, args, out)
            grads = ranks[0]["gradient_bytes"]
            sent = 2 * (count - 1) / count * grads
            reduce_ms = statistics.median(rank["all_reduce_s"] for rank in ranks) * 1e3
            print(f"{count:>9} | {total:>9,.0f} | {total / count:>14,.0f} | {total / base:>11.2f}x | "
                  f"{reduce_ms:>13.2f} | {sent / 1e6:.1f} MB of {grads / 1e6:.1f} MB of gradients")


if __name__ == "__main__":
    main()
