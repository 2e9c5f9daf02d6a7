"""One command that checks this repo on a GPU machine and prints the figures for docs/benchmarks.md.

    PYTHONPATH=src python benchmarks/gpu_check.py                         # CUDA: meant to end within 9 min
    PYTHONPATH=src python benchmarks/gpu_check.py --no-compile            # without the torch.compile rows
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --quick    # the same checks, tiny, on the CPU

It needs torch, torchvision, numpy, pillow, matplotlib, tqdm and torchmetrics, no internet and no install of
the package: Fashion-MNIST is read from data/fashion-mnist/*.gz (or Debian's dataset-fashion-mnist), the work
goes to a temporary folder (--work keeps it). The checks, each reported even when another fails:

 1. speed: the training benchmark (bench_training.py) at batch 128, 256 and 1024 against the pytorch/examples
    recipe: eager steps, CUDA graphs, and graphs with torch.compile; images/s, ratio, MFU, peak memory;
 2. same losses: a graphed and an eager run from the same seed, step by step over the first steps, against
    two eager runs (the noise floor: cuDNN may pick other algorithms in each run), bf16 and fp32;
 3. Fashion-MNIST through the CLI at 64x64 with --eval-every 1 (graphs, as train runs by default), then
    `sample`, `evaluate --features classifier` and `nearest` on that run;
 4. quality: the FID after the same epochs with graphs and eager, two seeds each;
 5. SIGTERM in the middle of a graphed run, then --resume to the end;
 6. every variant graphed for real against eager (tests/training/test_cuda_graphs.py, `pytest -m cuda`), a row each:
    --n-critic 2 with EMA, DiffAugment and labels (fp32 and bf16), WGAN-GP, resnet (dropout), the self-check
    again 100 replays later, --compile inside graphs, a CPU checkpoint resumed on the GPU, a channels-last one
    resumed with --compile, a capture made to fail (a host sync) after which the run trains eagerly, and the
    moving average's BatchNorm statistics recomputed from its own weights on the GPU.
The exit code is 1 when a check failed. The last lines are a Markdown table to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree

import numpy as np
import torch
import torchvision

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CUDA_TESTS = REPO / "tests" / "training" / "test_cuda_graphs.py"  # the tests that capture CUDA graphs for real
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
import bench_training  # noqa: E402

from dcgan import train  # noqa: E402
from dcgan.config import TrainConfig  # noqa: E402
from dcgan.device import pick_device  # noqa: E402
from dcgan.training.history import read_history_csv  # noqa: E402

SPEED_SIZE = 64  # the reference recipe trains 64x64 only


@dataclass(frozen=True)
class Sizes:
    """How big each check is: the full check for a GPU, or --quick for a dry run on a CPU."""

    image_size: int = 64  # of the Fashion-MNIST runs (the speed benchmark is always 64x64, full width)
    width: int = 64  # ngf and ndf of the Fashion-MNIST runs
    batches: tuple[int, ...] = (128, 256, 1024)
    images: int = 10_000  # generated pictures the speed benchmark trains on
    images_per_repeat: int = 25_600  # each timed repeat trains this many images (200 steps at batch 128)
    warmup: int = 20
    repeats: int = 3
    same_steps: int = 40  # steps compared between graphed and eager runs
    epochs: int = 3  # Fashion-MNIST epochs of the CLI run and the quality runs
    limit: int = 0  # Fashion-MNIST images used (0: all 60,000)
    sigterm_limit: int = 0  # images of the SIGTERM run: epochs long enough for the signal to land mid-epoch
    eval_n: int = 2000
    sample_n: int = 64


QUICK = Sizes(image_size=32, width=16, batches=(16,), images=128, images_per_repeat=64, warmup=4, repeats=2,
              same_steps=8, epochs=2, limit=512, sigterm_limit=4096, eval_n=64, sample_n=16)


@dataclass(frozen=True)
class Setup:
    """Where and how big the checks run."""

    sizes: Sizes
    device: torch.device
    work: Path  # runs, samples and checkpoints
    data: Path  # datasets and the decoded cache: data/fashion-mnist/*.gz is looked for here
    compile: bool  # the torch.compile rows of the speed check


@dataclass
class Report:
    """The rows of the summary table, and whether every check passed."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (check, figures, verdict)
    failed: bool = False

    def add(self, check: str, figures: str, ok: bool | None = None) -> None:
        verdict = "" if ok is None else "ok" if ok else "FAILED"
        self.failed |= ok is False
        self.rows.append((check, figures, verdict))
        print(f"  {check}: {figures}" + (f"  [{verdict}]" if verdict else ""), flush=True)

    def section(self, title: str, run, setup: Setup) -> None:
        """Run one check; an exception fails it in one row and the next check still runs."""
        print(f"\n== {title}", flush=True)
        started = time.perf_counter()
        try:
            run(self, setup)
        except Exception as error:  # noqa: BLE001 (every failure becomes a row; the traceback goes to stderr)
            traceback.print_exc()
            self.add(title, f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}",
                     ok=False)
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)


def environment(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    cuda = f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""
    return (f"{datetime.date.today()}, {name}{cuda}, torch {torch.__version__}, torchvision "
            f"{torchvision.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")


def speed(report: Report, setup: Setup) -> None:
    """bench_training's trainers at each batch size: the reference, eager, graphs, graphs + compile."""
    sizes, device, work = setup.sizes, setup.device, setup.work
    folder = bench_training.make_folder(work / "shapes", sizes.images, SPEED_SIZE, "png")
    modes = [("eager", {"cuda_graphs": "off"}), ("CUDA graphs", {"cuda_graphs": "on"})]
    if setup.compile:
        modes.append(("graphs + compile", {"cuda_graphs": "on", "compile": True}))
    for batch in sizes.batches:
        args = SimpleNamespace(image_size=SPEED_SIZE, batch_size=batch, device=device.type,
                               steps=max(2, sizes.images_per_repeat // batch), warmup=sizes.warmup,
                               repeats=sizes.repeats, peak_tflops=0.0)
        reference = bench_training.reference(folder, args)
        reference_speed = bench_training.report(reference, args, device, 0.0)
        for label, overrides in modes:
            result = bench_training.ours(folder, args, work / "bench", **overrides)
            images_per_s = bench_training.report(result, args, device, result["flops"])
            mfu = bench_training.model_flops_utilisation(images_per_s, result["flops"], device, result["plan"], 0.0)
            ratio = images_per_s / reference_speed
            report.add(f"speed, batch {batch}, {label}",
                       f"{images_per_s:,.0f} img/s, {ratio:.1f}x the reference ({reference_speed:,.0f} img/s), "
                       f"MFU {'n/a' if mfu is None else format(mfu, '.1%')}, peak {result['memory']} "
                       f"({result['plan']}){target(device, batch, label, images_per_s, ratio)}",
                       ok=result["replayed"] if overrides["cuda_graphs"] == "on" and device.type == "cuda" else None)


def target(device: torch.device, batch: int, label: str, images_per_s: float, ratio: float) -> str:
    """The speed target of the H100 for this row, met or missed (graphed rows on CUDA only)."""
    if device.type != "cuda" or label == "eager" or batch not in (128, 1024):
        return ""
    met = images_per_s >= 50_000 and ratio >= 11 if batch == 128 else images_per_s >= 120_000
    wanted = ">= 50,000 img/s and >= 11x" if batch == 128 else ">= 120,000 img/s"
    return f"; H100 target {wanted}: {'met' if met else 'missed'}"


def fashion_config(setup: Setup, run: str, **overrides) -> TrainConfig:
    values = dict(data="fashion-mnist", image_size=setup.sizes.image_size, ngf=setup.sizes.width,
                  ndf=setup.sizes.width, limit=setup.sizes.limit,
                  epochs=setup.sizes.epochs, device=setup.device.type, run=run, data_dir=str(setup.data),
                  samples_dir=str(setup.work / "samples"), checkpoints_dir=str(setup.work / "checkpoints"),
                  progress=False, download=False, overwrite=True)
    return TrainConfig(**{**values, **overrides})


def step_losses(cfg: TrainConfig) -> np.ndarray:
    """loss_D and loss_G of every step of a short run, (steps, 2)."""
    state = train(cfg, log=lambda line: None)
    rows = [row for row in state.history if row["kind"] == "step"]
    return np.array([[row["loss_D"], row["loss_G"]] for row in rows])


def same_losses(report: Report, setup: Setup) -> None:
    """Graphed against eager from the same seed, step by step, beside eager against eager."""
    sizes, batch = setup.sizes, setup.sizes.batches[0]
    for precision in ("bf16", "fp32"):
        common = dict(limit=batch * sizes.same_steps, epochs=1, batch_size=batch, log_every=1, precision=precision,
                      seed=0)
        eager = step_losses(fashion_config(setup, "same-eager", cuda_graphs="off", **common))
        again = step_losses(fashion_config(setup, "same-again", cuda_graphs="off", **common))
        graphed = step_losses(fashion_config(setup, "same-graphed", cuda_graphs="on", **common))
        floor, gap = np.abs(eager - again).max(), np.abs(eager - graphed).max()
        tolerance = max(3 * floor, 0.05 if precision == "bf16" else 0.005)
        report.add(f"same losses, {precision}, {len(eager)} steps of {batch}",
                   f"largest loss difference graphed vs eager {gap:.2e}, eager vs eager {floor:.2e} "
                   f"(allowed {tolerance:.2e})", ok=bool(len(eager) == sizes.same_steps and gap <= tolerance))


def package_environment() -> dict:
    """The environment for `python -m dcgan`: src/ first on PYTHONPATH (the package is not installed)."""
    paths = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def dcgan_command(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m dcgan ...`, output captured."""
    return subprocess.run([sys.executable, "-m", "dcgan", *arguments], capture_output=True, text=True,
                          env=package_environment(), cwd=REPO, timeout=timeout)


def cli_flags(setup: Setup, run: str, limit: int | None = None) -> list[str]:
    """The flags of a CLI run of the check: its folders, sizes and device; `limit` images (default: the sizes')."""
    limit = setup.sizes.limit if limit is None else limit
    return ["--data", "fashion-mnist", "--data-dir", str(setup.data), "--image-size", str(setup.sizes.image_size),
            "--ngf", str(setup.sizes.width), "--ndf", str(setup.sizes.width),
            "--limit", str(limit), "--device", setup.device.type, "--run", run, "--samples-dir",
            str(setup.work / "samples"), "--checkpoints-dir", str(setup.work / "checkpoints"), "--no-progress",
            "--no-download"]


def succeeded(out: subprocess.CompletedProcess, what: str) -> None:
    if out.returncode != 0:
        raise RuntimeError(f"{what} exited with {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}")


def epoch_rows(work: Path, run: str) -> list[dict]:
    return [row for row in read_history_csv(work / "checkpoints" / run / "history.csv") if row["kind"] == "epoch"]


def cli_run(report: Report, setup: Setup) -> None:
    """Train through the CLI with --eval-every 1, then sample, evaluate and nearest on that run."""
    sizes, device, work = setup.sizes, setup.device, setup.work
    started = time.perf_counter()
    out = dcgan_command("train", *cli_flags(setup, "check"), "--epochs", str(sizes.epochs), "--overwrite",
                        "--eval-every", "1", "--eval-n", str(sizes.eval_n), "--eval-features", "classifier")
    succeeded(out, "train")
    seconds = time.perf_counter() - started
    plan_line = next(line for line in out.stdout.splitlines() if line.startswith("run 'check' on "))
    epochs = epoch_rows(work, "check")
    times = ", ".join(format(row["seconds"], ".1f") + " s" for row in epochs)
    fids = ", ".join(format(row["fid"], ".1f") for row in epochs)
    plan = plan_line.split("(", 1)[1].split(";")[0]
    report.add(f"CLI train, Fashion-MNIST {sizes.image_size}x{sizes.image_size}, {len(epochs)} epochs",
               f"{seconds:.0f} s in all; epochs {times}; {epochs[-1]['images_per_s']:,.0f} img/s in the last; "
               f"FID {fids} ({plan})",
               ok=len(epochs) == sizes.epochs and all(np.isfinite(row["fid"]) for row in epochs))
    common = ["--run", "check", "--checkpoints-dir", str(work / "checkpoints"), "--device", device.type]
    picture = work / "sample.png"
    succeeded(dcgan_command("sample", *common, "--n", str(sizes.sample_n), "--out", str(picture)), "sample")
    report.add("CLI sample", f"{sizes.sample_n} images, {picture.stat().st_size:,} bytes",
               ok=picture.stat().st_size > 0)
    succeeded(dcgan_command("evaluate", *common, "--n", str(sizes.eval_n), "--features", "classifier", "--data-dir",
                            str(setup.data), "--no-progress"), "evaluate")
    result = json.loads(sorted((work / "checkpoints" / "check").glob("eval_*.json"))[-1].read_text())
    report.add("CLI evaluate --features classifier",
               f"FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}, precision {result['precision']:.3f}, "
               f"recall {result['recall']:.3f} (N = {sizes.eval_n})", ok=bool(np.isfinite(result["fid"])))
    succeeded(dcgan_command("nearest", *common, "--n", str(sizes.sample_n), "--features", "classifier", "--data-dir",
                            str(setup.data), "--samples-dir", str(work / "samples"), "--no-progress"), "nearest")
    nearest = work / "samples" / "check" / "nearest.png"
    report.add("CLI nearest", f"{nearest.name}, {nearest.stat().st_size:,} bytes", ok=nearest.stat().st_size > 0)


def quality(report: Report, setup: Setup) -> None:
    """The FID after the same epochs, graphs against eager, seeds 0 and 1."""
    sizes = setup.sizes
    fids = {}
    for graphs in ("on", "off"):
        for seed in (0, 1):
            cfg = fashion_config(setup, f"quality-{graphs}-{seed}", cuda_graphs=graphs, seed=seed,
                                 eval_every=sizes.epochs, eval_n=sizes.eval_n, eval_features="classifier")
            fids[graphs, seed] = [row for row in train(cfg, log=lambda line: None).history
                                  if row["kind"] == "epoch"][-1]["fid"]
    graphed, eager = [fids["on", s] for s in (0, 1)], [fids["off", s] for s in (0, 1)]
    spread = abs(eager[0] - eager[1])
    inside = min(eager) - spread <= np.mean(graphed) <= max(eager) + spread
    report.add(f"quality, FID after {sizes.epochs} epochs (seeds 0, 1)",
               f"graphs {graphed[0]:.2f}, {graphed[1]:.2f}; eager {eager[0]:.2f}, {eager[1]:.2f} "
               f"(eager spread {spread:.2f})", ok=bool(inside))


def sigterm_resume(report: Report, setup: Setup) -> None:
    """SIGTERM early in the second epoch of a CLI run (the step long since replayed from its graph), then
    --resume to the end."""
    device, work, epochs = setup.device, setup.work, setup.sizes.epochs + 1
    flags = cli_flags(setup, "sigterm", setup.sizes.sigterm_limit) + ["--epochs", str(epochs), "--batch-size",
                                                                      str(setup.sizes.batches[0])]
    child = subprocess.Popen([sys.executable, "-u", "-m", "dcgan", "train", *flags, "--overwrite"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=package_environment(),
                             cwd=REPO)
    lines = []
    for line in child.stdout:
        lines.append(line.rstrip())
        if line.startswith(f"epoch 1/{epochs}:"):
            time.sleep(0.3)  # into epoch 2
            child.send_signal(signal.SIGTERM)
            break
    lines += child.stdout.read().splitlines()
    code = child.wait(timeout=600)
    stopped = next((line for line in lines if line.startswith("stopped by SIGTERM")), "")
    resumed = dcgan_command("train", *flags, "--resume")
    succeeded(resumed, "train --resume")
    plan_line = next(line for line in resumed.stdout.splitlines() if line.startswith("run 'sigterm' on "))
    last = epoch_rows(work, "sigterm")[-1]
    graphs_on = device.type != "cuda" or "CUDA graphs" in plan_line
    report.add("SIGTERM, then --resume", f"exit {code}: '{stopped.split(': saved')[0]}'; resumed to epoch "
               f"{last['epoch']}, step {last['step']}, final loss_D {last['loss_D']:.3f}",
               ok=code == 143 and "continue with --resume" in stopped and last["epoch"] == epochs and graphs_on)


def graph_variants(report: Report, setup: Setup) -> None:
    """tests/training/test_cuda_graphs.py under pytest (`-m cuda`): a row per test, ok or FAILED (skipped without a
    GPU)."""
    results = setup.work / "cuda-tests.xml"
    out = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", str(CUDA_TESTS),
                          "-q", "-p", "no:cacheprovider", f"--junitxml={results}",
                          f"--basetemp={setup.work / 'cuda-tests'}"], capture_output=True, text=True,
                         env=package_environment(), cwd=REPO, timeout=900)
    if not results.is_file():
        raise RuntimeError(f"pytest exited with {out.returncode} and wrote no results: {out.stdout[-300:]}")
    for case in ElementTree.parse(results).getroot().iter("testcase"):
        name = case.get("name", "").removeprefix("test_").replace("_", " ")
        seconds = float(case.get("time", 0))
        problem = next((case.find(tag) for tag in ("failure", "error") if case.find(tag) is not None), None)
        skipped = case.find("skipped")
        if skipped is not None:
            report.add(f"graphed vs eager: {name}", f"skipped: {skipped.get('message', '')[:120]}")
        elif problem is not None:
            report.add(f"graphed vs eager: {name}", f"{seconds:.0f} s; {problem.get('message', '')[:300]}", ok=False)
        else:
            report.add(f"graphed vs eager: {name}", f"{seconds:.0f} s; self-check matched, losses within tolerance",
                       ok=True)


def table(report: Report, header: str) -> str:
    lines = [f"GPU check: {header}", "", "| check | figures | |", "|---|---|---|"]
    lines += [f"| {check} | {figures} | {verdict} |" for check, figures, verdict in report.rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every check (CPU)")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    parser.add_argument("--only", default="speed,same,cli,quality,sigterm,graphs",
                        help="comma-separated checks to run (default: all)")
    parser.add_argument("--work", default="", help="folder for the runs (default: a temporary one, removed)")
    parser.add_argument("--data-dir", default=str(REPO / "data"),
                        help="datasets and the decoded cache; Fashion-MNIST is looked for in <this>/fashion-mnist/ "
                             "(default: the repo's data/)")
    args = parser.parse_args()
    device = pick_device(args.device)
    sizes = QUICK if args.quick else Sizes()
    header = environment(device)
    print(f"GPU check on {header}\n{sizes}", flush=True)
    report = Report()
    checks = {"speed": ("speed (images/s)", speed), "same": ("same losses", same_losses),
              "cli": ("Fashion-MNIST through the CLI", cli_run), "quality": ("quality", quality),
              "sigterm": ("SIGTERM and --resume", sigterm_resume),
              "graphs": ("every variant graphed against eager (pytest -m cuda)", graph_variants)}
    with tempfile.TemporaryDirectory() as temporary:
        setup = Setup(sizes, device, Path(args.work or temporary), Path(args.data_dir),
                      compile=args.compile and device.type == "cuda")
        for name in args.only.split(","):
            title, check = checks[name.strip()]
            report.section(title, check, setup)
    print("\n" + table(report, header))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
