"""The speed benchmark: FLOP counts from layer shapes, and the script running end to end on a tiny folder."""

import re
import shutil
import subprocess
import sys

import pytest
import torch

from dcgan.models.dcgan import build_models
from dcgan.models.flops import forward_macs, training_flops_per_image
from tests.helpers import REPO


def test_flop_counts_match_the_hand_computed_dcgan_figures():
    generator, discriminator = build_models(64, 3, 100, 64, 64)
    counts = training_flops_per_image(generator, discriminator, 100, (3, 64, 64))
    # G: 100*512*16 + 512*16*256*16 + 256*64*128*16 + 128*256*64*16 + 64*1024*3*16 (per input pixel, k*k*out)
    assert counts["G_macs"] == 819_200 + 33_554_432 * 3 + 3_145_728 == 104_628_224
    # D: 32*32*64*48 + 16*16*128*1024 + 8*8*256*2048 + 4*4*512*4096 + 1*8192 (per output pixel, k*k*in)
    assert counts["D_macs"] == 3_145_728 + 33_554_432 * 3 + 8_192 == 103_817_216
    assert counts["flops"] == 2 * (3 * 104_628_224 + 9 * 103_817_216)  # about 2.5 GFLOP per image
    linear = torch.nn.Linear(10, 7)
    assert forward_macs(linear, torch.zeros(3, 10)) == 70


@pytest.mark.slow
def test_the_benchmark_script_runs_both_trainers(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_training.py"), "--device", "cpu",
                          "--images", "48", "--batch-size", "8", "--steps", "2", "--warmup", "1", "--repeats", "2",
                          "--samples", "50", "--folder-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("cache: 48 images decoded") for line in lines)
    assert any(line.startswith("dcgan ") and "img/s" in line for line in lines)
    assert any(line.startswith("reference (pytorch/examples recipe)") for line in lines)
    assert any(line.startswith("ratio dcgan / reference:") for line in lines)
    assert any(line.startswith("generate: 50 samples") for line in lines)


@pytest.mark.slow
def test_the_variants_comparison_script_prints_the_table_and_commands(tmp_path, tiny_classifier):
    _, _, _, root = tiny_classifier  # its classifier is cached under root/checkpoints
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare_variants.py"), "--only", "dcgan,hinge",
                          "--epochs", "1", "--limit", "256", "--eval-n", "64", "--device", "cpu", "--run", "cmp",
                          "--data-dir", str(root / "data"), "--checkpoints-dir", str(root / "checkpoints"),
                          "--samples-dir", str(tmp_path), "--out", str(tmp_path / "v.png"),
                          "--json", str(tmp_path / "rows.json")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("device: ") and "torch " in lines[0] and "Fashion-MNIST classifier" in lines[0]
    assert "| variant | flags | epochs | time (s) | FID |" in lines
    assert any(line.startswith("| hinge | `--loss hinge` | 1 |") for line in lines)
    assert any(line.endswith("--run cmp-hinge --loss hinge") for line in lines)
    assert (tmp_path / "v.png").stat().st_size > 0 and (tmp_path / "rows.json").is_file()


@pytest.mark.slow
def test_the_ddp_benchmark_measures_one_and_two_processes(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_ddp.py"), "--device", "cpu",
                          "--processes", "2", "--batch", "8", "--steps", "2", "--warmup", "1", "--repeats", "1",
                          "--work", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("device: ") and "torch " in lines[0]
    assert lines[1].startswith("reference (one process, no torchrun")
    two = lines[-1].split("|")
    assert int(two[0]) == 2 and float(two[4]) > 0  # the all-reduce was timed
    assert two[5].strip() == "25.4 MB of 25.4 MB of gradients"  # 2 (N - 1) / N of G's and D's fp32 gradients


GRAPHED_VARIANTS = [f"graphed vs eager: {name}" for name in (
    "graphed steps train like eager steps[n-critic 2, EMA, DiffAugment, conditional (fp32)]",
    "graphed steps train like eager steps[n-critic 2, EMA, DiffAugment, conditional (bf16)]",
    "graphed steps train like eager steps[wgan-gp]", "graphed steps train like eager steps[resnet (dropout)]",
    "the self check runs again 100 replays later", "compiled networks inside graphs",
    "a checkpoint written on the cpu resumes graphed on the gpu",
    "a channels last checkpoint resumes compiled with moments laid out like the weights",
    "a capture that fails leaves the generators and the allocator usable and the run trains eagerly",
    "a g d and loss of your own graphed like eager",
    "a network of your own that cannot be captured falls back in one line",
    "the graphed average draws with statistics of its own weights")]  # training/test_cuda_graphs.py


@pytest.mark.slow
def test_the_gpu_check_runs_every_check_small_on_the_cpu(tmp_path, tiny_classifier):
    """The dry run of benchmarks/gpu_check.py: every check runs and reports, the table is printed; on a GPU the
    same script measures the figures."""
    _, _, _, root = tiny_classifier
    work = tmp_path / "work"
    shutil.copytree(root / "checkpoints" / "_classifiers", work / "checkpoints" / "_classifiers")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                          "--work", str(work), "--data-dir", str(root / "data")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = out.stdout[out.stdout.index("| check | figures | |"):].splitlines()
    checks = [line.split(" | ")[0].lstrip("| ") for line in table[2:]]
    assert checks == ["speed, batch 16, eager", "speed, batch 16, CUDA graphs", "same losses, bf16, 8 steps of 16",
                      "same losses, fp32, 8 steps of 16", "CLI train, Fashion-MNIST 32x32, 2 epochs", "CLI sample",
                      "CLI evaluate --features classifier", "CLI nearest", "quality, FID after 2 epochs (seeds 0, 1)",
                      "SIGTERM, then --resume", *GRAPHED_VARIANTS]
    assert "FAILED" not in out.stdout and out.stdout.count("| ok |") == 8
    assert out.stdout.count("| skipped: needs a CUDA GPU (pytest -m cuda there) |  |") == len(GRAPHED_VARIANTS)
    assert "exit 143: 'stopped by SIGTERM at epoch 2" in out.stdout
    assert re.search(r"^GPU check: \d{4}-\d\d-\d\d, CPU, torch \S+, torchvision \S+", out.stdout, re.MULTILINE)


@pytest.mark.slow
def test_the_notebook_timer_runs_a_notebook_with_its_defaults_into_a_fresh_root(tmp_path, fashion_mnist_available):
    pytest.importorskip("papermill")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "time_notebooks.py"), "--root", str(tmp_path),
                          "--only", "01"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^machine: .+, \d+ cores; torch .+ \(\d+ threads by default\)", out.stdout, re.M)
    assert re.search(r"^\| `01_explore_data` \| \d+\.\d \| \d+\.\d\d \|$", out.stdout, re.M)
    assert (tmp_path / "executed-01_explore_data.ipynb").is_file() and list((tmp_path / "data").rglob("*.u8"))
