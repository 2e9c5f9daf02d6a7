"""Hostile checkpoints and hostile flags: each ends in one line naming the problem, exit code 2, and nothing
written outside the folders the command was given."""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch

from dcgan import train
from dcgan.cli import main
from dcgan.paths import repo_root
from tests.helpers import files_under, quiet, tiny_config

SMALL = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> dict:
    """A real checkpoint of a tiny run, loaded as it is stored (a fresh copy for each mutation)."""
    root = tmp_path_factory.mktemp("good")
    train(tiny_config(root, batch_size=16, limit=64, epochs=1, run="good"), log=quiet)
    return torch.load(root / "checkpoints" / "good" / "last.pt", weights_only=True)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory and the named folders; `run(args)` runs the CLI and returns (exit code, stderr lines),
    checking that nothing appeared outside the named folders (nor in the repo's own samples/ and checkpoints/)."""
    work, named = tmp_path / "work", tmp_path / "named"
    work.mkdir()
    monkeypatch.chdir(work)
    folders = ["--checkpoints-dir", str(named / "checkpoints")]
    watched = [tmp_path, repo_root() / "samples", repo_root() / "checkpoints"]

    def run(args: list[str], capsys) -> tuple[int, list[str]]:
        before = {path for path in files_under(*watched) if path != named and named not in path.parents}
        code = main(args)
        after = {path for path in files_under(*watched) if path != named and named not in path.parents}
        assert after - before == set(), f"written outside the named folders: {sorted(after - before)}"
        return code, capsys.readouterr().err.strip().splitlines()

    run.named, run.folders, run.work = named, folders, work
    return run


def mutated(payload: dict, where: str, value) -> dict:
    """A deep copy of the checkpoint with the field at `where` ("config.nz", "rng.data") set to `value`
    (deleted when value is DELETE)."""
    payload = copy.deepcopy(payload)
    *parents, last = where.split(".")
    holder = payload
    for key in parents:
        holder = holder[key]
    if value is DELETE:
        del holder[last]
    else:
        holder[last] = value
    return payload


DELETE = object()


def first_weight(payload: dict, scale: float) -> dict:
    payload = copy.deepcopy(payload)
    name = next(iter(payload["generator"]))
    payload["generator"][name] = payload["generator"][name] * scale
    return payload


HOSTILE = [  # (what is changed, value, the field the line must name)
    ("config.run", "../../escape", "config.run"),
    ("config.run", "x" * 300, "config.run"),
    ("config.nz", "100", "config.nz"),
    ("config.nz", -3, "config.nz"),
    ("config.lr", math.inf, "config.lr"),
    ("config.image_size", 33, "config.image_size"),
    ("config.loss", "softmax", "config.loss"),
    ("config.seed", None, "config.seed"),
    ("config.data", "", "config.data"),
    ("config.ngf", 16, "does not match its own config"),  # weights of ngf 8 under a config that says 16
    ("config.ngf", DELETE, "does not match its own config"),  # a missing setting takes the default (64)
    ("epoch", None, "epoch"),
    ("step", -1, "step"),
    ("epoch_step", "3", "epoch_step"),
    ("fixed_noise", torch.zeros(10, 99), "fixed_noise"),
    ("fixed_noise", torch.full((10, 16), math.nan), "fixed_noise"),
    ("fixed_noise", [[0.0] * 16] * 10, "fixed_noise"),
    ("rng.data", "seed", "rng.data"),
    ("rng.noise_device", "tpu", "rng.noise_device"),
    ("history", "rows", "history"),
    ("history", [{"kind": "epoch", "loss_D": [1, 2]}], "history[0]"),
    ("means.epoch", {"sums": "x"}, "means.epoch"),
    ("optimizer_g", None, "optimizer_g"),
    ("generator", {"a": "b"}, "generator"),
    ("format_version", "2", "format_version"),
    ("fixed_noise", DELETE, "keys missing"),
    ("config", ["not", "a", "table"], "config"),
    ("config.surprise", 1, "unknown setting(s) surprise"),
]


@pytest.mark.parametrize("where, value, named", HOSTILE, ids=[f"{w}={str(v)[:12]}" for w, v, _ in HOSTILE])
@pytest.mark.parametrize("command", ["sample", "nearest", "resume"])
def test_a_hostile_checkpoint_is_one_line_naming_the_file_and_field(good_checkpoint, sandbox, capsys, where, value,
                                                                   named, command):
    path = sandbox.work / "hostile.pt"
    torch.save(mutated(good_checkpoint, where, value), path)
    args = {"sample": ["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "grid.png")],
            "nearest": ["nearest", "--checkpoint", str(path), "--samples-dir", str(sandbox.named / "samples"),
                        "--data-dir", str(sandbox.named / "data"), "--device", "cpu", "--no-progress"],
            "resume": ["train", "--resume", "--run", "r", "--checkpoint", str(path), "--epochs", "3",
                       "--samples-dir", str(sandbox.named / "samples"), "--data-dir", str(sandbox.named / "data"),
                       "--device", "cpu", "--no-progress"]}[command]
    code, lines = sandbox([*args, *sandbox.folders], capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: checkpoint {path}") or \
        lines[0].startswith(f"error: {path} is not a dcgan checkpoint"), lines
    assert named in lines[0]


def test_non_finite_weights_are_refused(good_checkpoint, sandbox, capsys):
    path = sandbox.work / "nan.pt"
    torch.save(first_weight(good_checkpoint, math.nan), path)
    code, lines = sandbox(["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "g.png")], capsys)
    name = next(iter(good_checkpoint["generator"]))
    assert (code, len(lines)) == (2, 1)
    assert f"generator.{name} holds NaN or infinite values" in lines[0]


def test_a_checkpoint_never_chooses_a_folder(good_checkpoint, sandbox, capsys, tmp_path):
    """The saving machine's folders (data, samples, checkpoints) are dropped: a sample goes under the folders
    this command names, never under those the file names."""
    elsewhere = tmp_path / "elsewhere"
    payload = copy.deepcopy(good_checkpoint)
    payload["config"].update(samples_dir=str(elsewhere), checkpoints_dir=str(elsewhere), data_dir=str(elsewhere))
    path = sandbox.work / "places.pt"
    torch.save(payload, path)
    from dcgan.models.runs import load_generator

    cfg = load_generator(path, torch.device("cpu")).cfg
    assert (cfg.samples_dir, cfg.checkpoints_dir, cfg.data_dir) == ("", "", "")
    code, _ = sandbox(["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "g.png"), "--n", "4"], capsys)
    assert code == 0 and (sandbox.named / "g.png").is_file() and not elsewhere.exists()


def test_the_untouched_checkpoint_loads(good_checkpoint, sandbox, capsys):
    """The baseline of the tests above: the same checkpoint, unchanged, samples fine."""
    path = sandbox.work / "good.pt"
    torch.save(good_checkpoint, path)
    code, lines = sandbox(["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "g.png"), "--n", "4"],
                          capsys)
    assert code == 0 and lines == [] and (sandbox.named / "g.png").is_file()


FLAGS = [  # (arguments, what the line must say)
    (["train", "--lr", "inf"], "--lr must be a finite number"),
    (["train", "--loss", "wgan-gp", "--gp-weight", "nan"], "--gp-weight must be a finite number"),
    (["train", "--ema", "nan"], "--ema must be a finite number"),
    (["train", "--ngf", "1000000000"], "--ngf must be at most 1,024"),
    (["train", "--batch-size", "10000000"], "--batch-size must be at most"),
    (["train", "--seed", "-1"], "--seed must be 0 or more"),
    (["train", "--data", ""], "--data is empty"),
    (["train", "--data", "   "], "--data is empty"),
    (["train", "--run", "r" * 300], "is not a plain folder name"),
    (["train", "--run", "../escape"], "is not a plain folder name"),
    (["train", "--run", "a/b"], "is not a plain folder name"),
    (["train", "--checkpoints-dir", "{file}"], "is a file, not a folder"),
    (["train", "--samples-dir", "{file}"], "is a file, not a folder"),
    (["sample", "--run", "x", "--n", "1000000000000"], "--n must be at most 10,000"),
    (["sample", "--run", "x", "--nrow", "-1"], "--nrow must be 0 or more"),
    (["sample", "--run", "../x"], "is not a plain folder name"),
    (["sample", "--run", "x", "--out", "{folder}"], "is a folder: name the PNG file"),
    (["sample", "--run", "x", "--seed", str(2**64)], "--seed must be at most"),
    (["nearest", "--run", "x", "--show", "0"], "--show must be at least 1"),
    (["nearest", "--run", "x", "--n", "-5"], "--n must be at least 2"),
    (["evaluate", "--run", "x", "--n", "1"], "--n must be at least 2"),
    (["evaluate", "--run", "x", "--face-n", "0"], "--face-n must be at least 1"),
    (["prepare", "src", "dst", "--workers", "-1"], "--workers must be 0 or more"),
]


@pytest.mark.parametrize("args, message", FLAGS, ids=[" ".join(a)[:40] for a, _ in FLAGS])
def test_a_hostile_flag_is_one_line_and_writes_nothing(sandbox, capsys, tmp_path, args, message):
    a_file, a_folder = tmp_path / "a-file", tmp_path / "a-folder"
    a_file.write_text("x")
    a_folder.mkdir(exist_ok=True)
    args = [arg.format(file=a_file, folder=a_folder) for arg in args]
    if args[0] == "train":
        args = ["train", *SMALL, *args[1:], "--data-dir", str(sandbox.named / "data")]
        if "--samples-dir" not in args:
            args += ["--samples-dir", str(sandbox.named / "samples")]
    if "--checkpoints-dir" not in args and args[0] != "prepare":
        args += sandbox.folders
    code, lines = sandbox(args, capsys)
    assert code == 2
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in "\n".join(lines)


def test_running_out_of_memory_is_one_line_saying_what_to_lower(tmp_path):
    """A real allocation failure: the process's address space is capped, then networks too wide for it built."""
    import subprocess
    import sys

    script = (
        "import resource, sys\n"
        "from dcgan.cli import main\n"
        "import torch\n"
        "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + 1_500_000_000, resource.RLIM_INFINITY))\n"
        "sys.exit(main(sys.argv[1:]))\n")
    flags = ["train", "--data", "synthetic", "--image-size", "128", "--ngf", "1024", "--ndf", "8", "--limit", "64",
             "--batch-size", "8", "--epochs", "1", "--device", "cpu", "--no-progress", "--run", "big",
             "--data-dir", str(tmp_path / "data"), "--samples-dir", str(tmp_path / "samples"),
             "--checkpoints-dir", str(tmp_path / "checkpoints")]
    result = subprocess.run([sys.executable, "-c", script, *flags], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: out of memory in train") and "--batch-size" in lines[0]
    assert not (tmp_path / "checkpoints" / "big" / "last.pt").exists()
