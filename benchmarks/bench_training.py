"""Training speed of this project's trainer against the pytorch/examples DCGAN recipe, in one run.

    python benchmarks/bench_training.py                       # CUDA when present: 20,000 64x64 PNGs
    python benchmarks/bench_training.py --device cpu --images 4000 --steps 10
    python benchmarks/bench_training.py --only cache --images 60000 --format jpg

Both trainers read the same generated folder of images and train the same number of steps after warm-up;
each figure is the median of --repeats timings. This trainer's step runs as train() runs it (from
CUDA graphs on CUDA). Printed: images/s of each and their ratio, peak device memory,
TFLOP/s and MFU (FLOP counted from the layer shapes), the time to build the uint8 cache from the folder and
to generate 10,000 samples. --variants adds this trainer with single speed settings changed.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_dcgan import ReferenceTrainer  # noqa: E402

from dcgan.config import TrainConfig  # noqa: E402
from dcgan.data.batches import epoch_plan  # noqa: E402
from dcgan.data.cache import load_image_data  # noqa: E402
from dcgan.data.synthetic import shape_images  # noqa: E402
from dcgan.device import pick_device  # noqa: E402
from dcgan.models.flops import training_flops_per_image  # noqa: E402
from dcgan.pictures.sampling import generate, noise_for  # noqa: E402
from dcgan.training.speed import speed_plan  # noqa: E402
from dcgan.training.start import start_run  # noqa: E402

# Dense peak TFLOP/s by GPU name: (bf16 tensor cores, TF32 tensor cores, which fp32 convolutions use by default)
PEAKS = {"H100": (989.0, 494.7), "H200": (989.0, 494.7), "A100": (312.0, 156.0), "L4": (121.0, 60.0)}


def variants(device: torch.device) -> list[dict]:
    """This trainer with one speed setting flipped from what it picks on `device` by default."""
    plan = speed_plan(TrainConfig(), device)
    return [{"precision": "fp32" if plan.bf16 else "bf16"}, {"channels_last": "off" if plan.channels_last else "on"},
            {"data_on_device": "off"}, {"cuda_graphs": "off" if plan.cuda_graphs else "on"}, {"compile": True}]


def make_folder(root: Path, count: int, size: int, fmt: str) -> Path:
    """root/images/00000.<fmt>...: `count` generated pictures of coloured shapes, written once and reused."""
    folder = root / f"shapes-{count}-{size}px-{fmt}"
    images = folder / "images"
    if len(list(images.glob(f"*.{fmt}"))) == count:
        return folder
    images.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for index, (image, _) in enumerate(shape_images(count, size)):
        image.save(images / f"{index:05d}.{fmt}", **({"quality": 95} if fmt == "jpg" else {}))
    print(f"wrote {count:,} {size}x{size} {fmt.upper()} files to {folder} in {time.perf_counter() - started:.1f} s")
    return folder


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device: torch.device, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def peak_memory_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else "n/a"


def bench_cache(folder: Path, size: int) -> float:
    """Seconds to decode the folder into a fresh uint8 cache (the progress bar shows while it runs)."""
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        data = load_image_data(str(folder), size, 3, Path(data_dir), progress=True)
        seconds = time.perf_counter() - started
    print(f"cache: {len(data):,} images decoded in {seconds:.2f} s ({len(data) / seconds:,.0f} images/s)")
    return seconds


def ours(folder: Path, args, work: Path, **overrides) -> dict:
    """This project's trainer with its defaults (and `overrides`): images/s over args.steps steps."""
    cfg = TrainConfig(data=str(folder), image_size=args.image_size, batch_size=args.batch_size, device=args.device,
                      run="bench", data_dir=str(work / "data"), samples_dir=str(work / "samples"),
                      checkpoints_dir=str(work / "checkpoints"), progress=False, overwrite=True, **overrides)
    lines = []
    state = start_run(cfg, log=lines.append)  # (its runner: eager, or from CUDA graphs once warm)
    device = state.setup.device

    def batches():
        while True:
            order, coins = epoch_plan(len(state.setup.data), state.setup.steps_per_epoch, cfg.batch_size, cfg.flip,
                                      state.progress.data_rng)
            yield from state.setup.batches.epoch(order, coins, cfg.batch_size)

    stream = batches()

    def run(steps: int):
        for _ in range(steps):
            state.runner(state, next(stream))  # as train() runs it: eagerly or from CUDA graphs, compiled or not

    run(args.warmup)
    peak_memory_reset(device)
    times = timed(lambda: run(args.steps), device, args.repeats)
    result = {"name": "dcgan" + (f" ({', '.join(f'{k}={v}' for k, v in overrides.items())})" if overrides else ""),
              "plan": "; ".join([state.setup.plan.describe()] + [line for line in lines if "failed" in line]),
              "replayed": bool(getattr(state.runner, "graphed", None) and state.runner.graphed.replayed),
              "times": times,
              "memory": peak_memory(device),
              "flops": training_flops_per_image(state.nets.generator, state.nets.discriminator, cfg.nz,
                                                tuple(state.setup.data.images.shape[1:]))["flops"],
              "generator": state.nets.generator, "nz": cfg.nz}
    return result


def reference(folder: Path, args) -> dict:
    device = pick_device(args.device)
    trainer = ReferenceTrainer(str(folder), device, args.image_size, args.batch_size)
    trainer.run(args.warmup)
    peak_memory_reset(device)
    times = timed(lambda: trainer.run(args.steps), device, args.repeats)
    return {"name": "reference (pytorch/examples recipe)", "plan": "fp32, DataLoader(workers=2), 5 syncs/step",
            "times": times, "memory": peak_memory(device)}


def peak_tflops(device: torch.device, bf16: bool, given: float) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (bf16_peak, tf32_peak) in PEAKS.items():
        if key in name:
            return bf16_peak if bf16 else tf32_peak
    return None


def speed_of(result: dict, args) -> float:
    """Images per second: the median of the repeats."""
    return args.steps * args.batch_size / statistics.median(result["times"])


def model_flops_utilisation(speed: float, flops: float, device: torch.device, plan: str, given: float
                            ) -> float | None:
    """The share of the device's dense peak that `speed` images/s at `flops` per image reach (None: unknown)."""
    peak = peak_tflops(device, "bf16" in plan, given)
    return speed * flops / 1e12 / peak if peak else None


def report(result: dict, args, device: torch.device, flops: float) -> float:
    speed = speed_of(result, args)
    achieved = speed * flops / 1e12
    utilisation = model_flops_utilisation(speed, flops, device, result["plan"], args.peak_tflops)
    mfu = f"{utilisation:6.1%}" if utilisation is not None else "   n/a"
    spread = ", ".join(f"{args.steps * args.batch_size / t:,.0f}" for t in result["times"])
    print(f"{result['name']:<44} {speed:>10,.0f} img/s  [{spread}]  peak mem {result['memory']:>9}  "
          f"{achieved:7.3f} TFLOP/s  MFU {mfu}  ({result['plan']})")
    return speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=20000, help="pictures in the generated folder")
    parser.add_argument("--format", default="png", choices=("png", "jpg"))
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per repeat")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (cuDNN autotuning, compile)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="all", choices=("all", "cache", "ours", "reference"))
    parser.add_argument("--variants", action="store_true", help="also this trainer with one setting changed")
    parser.add_argument("--samples", type=int, default=10000, help="images to generate in the sampling timing")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="the device's peak, for MFU on unknown ones")
    parser.add_argument("--folder-root", default=str(Path(__file__).resolve().parent / ".data"))
    args = parser.parse_args()

    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    print(f"{datetime.date.today()}  device {device} ({name}, {torch.get_num_threads()} CPU threads)  torch "
          f"{torch.__version__}  torchvision {torchvision.__version__}  numpy {np.__version__}")
    print(f"image size {args.image_size}, batch {args.batch_size}, {args.steps} steps after {args.warmup} warm-up, "
          f"median of {args.repeats}")
    folder = make_folder(Path(args.folder_root), args.images, args.image_size, args.format)
    if args.only in ("all", "cache"):
        bench_cache(folder, args.image_size)
    if args.only == "cache":
        return
    with tempfile.TemporaryDirectory() as work:
        results = []
        if args.only in ("all", "ours"):
            mine = ours(folder, args, Path(work))
            results.append(mine)
            if args.variants:
                results += [ours(folder, args, Path(work), **change) for change in variants(device)]
        if args.only in ("all", "reference"):
            results.append(reference(folder, args))
        flops = next((r["flops"] for r in results if "flops" in r), 0.0)
        speeds = {result["name"]: report(result, args, device, flops) for result in results}
        if len(speeds) > 1 and args.only == "all":
            ratio = speeds[results[0]["name"]] / speeds[results[-1]["name"]]
            print(f"ratio dcgan / reference: {ratio:.2f}x  ({flops / 1e9:.2f} GFLOP per image per iteration)")
        if args.only in ("all", "ours"):
            generator, nz = results[0]["generator"], results[0]["nz"]
            noise = noise_for(args.samples, nz, 1)
            seconds = timed(lambda: generate(generator, noise, batch_size=1000), device, 1)[0]
            print(f"generate: {args.samples:,} samples in {seconds:.2f} s ({args.samples / seconds:,.0f} images/s)")


if __name__ == "__main__":
    main()
