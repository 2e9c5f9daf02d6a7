"""Every loaded value is checked whole, and no input crashes the loader: export folders, checkpoints, numbers of
any size at the door, damaged epoch grids on resume, the torchrun variables outside torchrun, and a stop while
the image cache is decoded by worker processes. Each mistake is one line, exit code 2, nothing written."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import multiprocessing.util
import os
import shutil
import signal
import struct
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dcgan import TrainConfig, TrainingStopped, train
from dcgan.cli import build_parser, main
from dcgan.config import fields_with, limits_of
from dcgan.data.decode import PARALLEL_FROM, parallel_map
from dcgan.training.signals import signals_raise
from tests.helpers import quiet, tiny_config
from tests.models.test_hostile_checkpoints import good_checkpoint, sandbox  # noqa: F401 (fixtures)
from tests.shared.test_nothing_deleted import cli, train_flags, tree

HUGE = "1" + "0" * 400  # a whole number of 401 digits


# Export folders

@pytest.fixture(scope="module")
def export_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exported")
    train(tiny_config(root, limit=64, epochs=1, run="e"), log=quiet)
    assert main(["export", "--run", "e", "--checkpoints-dir", str(root / "checkpoints"), "--out",
                 str(root / "export")]) == 0
    return root / "export"


def with_tensor(folder: Path, change) -> None:
    tensors = load_file(folder / "model.safetensors")
    name = next(name for name, tensor in tensors.items() if tensor.is_floating_point())
    tensors[name] = change(tensors[name])
    save_file(tensors, folder / "model.safetensors")


def with_config(folder: Path, text: str) -> None:
    (folder / "config.json").write_text(text)


def config_text(folder: Path, **values) -> str:
    import json

    return json.dumps({**json.loads((folder / "config.json").read_text()), **values})


def replaced_by_link(folder: Path, name: str, target: str) -> None:
    (folder / name).unlink()
    (folder / name).symlink_to(target)


HOSTILE_EXPORTS = {
    "config.json nested 100,000 deep": lambda f: with_config(f, "[" * 100_000 + "]" * 100_000),
    "a 401-digit nz": lambda f: with_config(f, config_text(f).replace('"nz": 16', f'"nz": {HUGE}')),
    "a 5,000-digit ngf": lambda f: with_config(f, config_text(f).replace('"ngf": 8', '"ngf": 1' + "0" * 5000)),
    "a 401-digit epoch": lambda f: with_config(f, config_text(f).replace('"epoch": 1', f'"epoch": {HUGE}')),
    "a float8 tensor": lambda f: with_tensor(f, lambda t: t.to(torch.float8_e4m3fn)),
    "a float64 tensor of 1e300": lambda f: with_tensor(f, lambda t: torch.full_like(t, 1e300, dtype=torch.float64)),
    "a float16 tensor": lambda f: with_tensor(f, lambda t: t.half()),
    "config.json a link to /proc/self/mem": lambda f: replaced_by_link(f, "config.json", "/proc/self/mem"),
    "config.json a link to a good config": lambda f: (shutil.copy(f / "config.json", f.parent / "c.json"),
                                                      replaced_by_link(f, "config.json", str(f.parent / "c.json"))),
    "config.json a FIFO": lambda f: ((f / "config.json").unlink(), os.mkfifo(f / "config.json")),
    "model.safetensors a link to /dev/zero": lambda f: replaced_by_link(f, "model.safetensors", "/dev/zero"),
    "model.safetensors far larger than G": lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes() + b"\0" * (8 << 20)),
}


@pytest.mark.parametrize("case", HOSTILE_EXPORTS)
def test_a_hostile_export_folder_is_one_line_naming_the_file(export_folder, tmp_path, capsys, case):
    folder = tmp_path / "export"
    shutil.copytree(export_folder, folder, symlinks=True)
    HOSTILE_EXPORTS[case](folder)
    code, err = cli(capsys, "sample", "--checkpoint", str(folder), "--n", "4", "--out", str(tmp_path / "x.png"))
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: export file {folder}/"), err
    assert not (tmp_path / "x.png").exists()


# Checkpoints

def first_tensor(payload, network: str, floating: bool = True):
    return next(name for name, tensor in payload[network].items() if tensor.is_floating_point() == floating)


def changed(payload, change):
    payload = copy.deepcopy(payload)
    change(payload)
    return payload


def set_weight(network, value, floating=True):
    def change(payload):
        payload[network][first_tensor(payload, network, floating)] = value(payload[network][first_tensor(
            payload, network, floating)])
    return change


def set_moment(optimizer, key, value):
    def change(payload):
        payload[optimizer]["state"][0][key] = value(payload[optimizer]["state"][0][key])
    return change


HOSTILE_TENSORS = {  # what is changed -> the field the line must name
    "a float8 weight": (set_weight("generator", lambda t: t.to(torch.float8_e4m3fn)), "generator."),
    "a float64 weight of 1e300": (set_weight("generator", lambda t: torch.full_like(t, 1e300, dtype=torch.float64)),
                                  "generator."),
    "a float16 weight": (set_weight("discriminator", lambda t: t.half()), "discriminator."),
    "an int32 batch count": (set_weight("discriminator", lambda t: t.int(), floating=False), "discriminator."),
    "float64 fixed noise of 1e300": (lambda p: p.update(fixed_noise=torch.full((10, 16), 1e300, dtype=torch.float64)),
                                     "fixed_noise"),
    "a NaN moment": (set_moment("optimizer_d", "exp_avg", lambda t: torch.full_like(t, math.nan)),
                     "optimizer_d.state.0.exp_avg"),
    "a float8 moment": (set_moment("optimizer_g", "exp_avg_sq", lambda t: t.to(torch.float8_e5m2)),
                        "optimizer_g.state.0.exp_avg_sq"),
    "a step count of the wrong kind": (set_moment("optimizer_g", "step", lambda t: "five"), "optimizer_g.state.0.step"),
    "parameter groups without parameters": (lambda p: p["optimizer_g"].update(param_groups=[{"params": "all"}]),
                                            "optimizer_g.param_groups"),
    "running sums of 1e300 in float64": (lambda p: p["means"]["epoch"].update(
        sums=torch.full((4,), 1e300, dtype=torch.float64)), "means.epoch"),
}


@pytest.mark.parametrize("case", HOSTILE_TENSORS)
@pytest.mark.parametrize("command", ["sample", "resume"])
def test_a_checkpoint_tensor_of_the_wrong_dtype_or_value_is_one_line(good_checkpoint, sandbox, capsys, case,  # noqa: F811
                                                                     command):
    change, field = HOSTILE_TENSORS[case]
    path = sandbox.work / "hostile.pt"
    torch.save(changed(good_checkpoint, change), path)
    args = {"sample": ["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "grid.png")],
            "resume": ["train", "--resume", "--run", "r", "--checkpoint", str(path), "--epochs", "3",
                       "--samples-dir", str(sandbox.named / "samples"), "--data-dir", str(sandbox.named / "data"),
                       "--device", "cpu", "--no-progress"]}[command]
    code, lines = sandbox([*args, *sandbox.folders], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: checkpoint {path}: {field}"), lines
    assert not (sandbox.named / "grid.png").exists()


def test_moments_shaped_unlike_their_parameters_are_refused_on_resume(good_checkpoint, sandbox, capsys):  # noqa: F811
    path = sandbox.work / "hostile.pt"
    torch.save(changed(good_checkpoint, set_moment("optimizer_d", "exp_avg", lambda t: torch.zeros(3))), path)
    code, lines = sandbox(["train", "--resume", "--run", "r", "--checkpoint", str(path), "--epochs", "3",
                           "--samples-dir", str(sandbox.named / "samples"), "--data-dir", str(sandbox.named / "data"),
                           "--device", "cpu", "--no-progress", *sandbox.folders], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: checkpoint {path} is incomplete"), lines


# Numbers at the door, whatever their size

def number_flags() -> list[tuple[str, str]]:
    """(command, flag) for every flag of every command that takes a number."""
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return [(name, option) for name, sub in commands.choices.items() for action in sub._actions
            if action.type in (int, float) for option in action.option_strings[:1]]


def test_every_number_flag_is_known_to_this_test():
    found = number_flags()
    assert len(found) > 30 and ("train", "--keep-last") in found and ("sample", "--n") in found


def flags_before(command: str, root: Path) -> list[str]:
    """A command line of `command` that is right but for the number flag added to it."""
    return {"train": train_flags(root), "prepare": ["prepare", str(root / "raw"), str(root / "out")],
            "export": ["export", "--run", "none", "--checkpoints-dir", str(root), "--out", str(root / "out")]
            }.get(command, [command, "--run", "none", "--checkpoints-dir", str(root)])


@pytest.mark.parametrize("command, flag", number_flags())
def test_a_number_of_401_digits_is_one_line_naming_its_flag(tmp_path, capsys, command, flag):
    (tmp_path / "raw").mkdir()
    before = tree(tmp_path)
    code, err = cli(capsys, *flags_before(command, tmp_path), flag, HUGE)
    assert code == 2 and len(err) == 1, err
    # every number is checked at the door; --class is checked against the run's classes, once the run is loaded
    loaded_first = flag == "--class" and err[0].startswith("error: no checkpoint at")
    assert err[0].startswith(f"error: {flag} must ") or loaded_first, err
    assert len(err[0]) < 300 and tree(tmp_path) == before


def test_every_whole_number_setting_has_an_upper_bound():
    assert [name for name in fields_with("limits") if limits_of(name)[1] is None
            and isinstance(getattr(TrainConfig(), name), int)] == []
    whole = [spec.name for spec in dataclasses.fields(TrainConfig) if type(spec.default) is int]
    assert set(whole) <= set(fields_with("limits"))  # the limits are each setting's own role


# Damaged epoch grids when a resumed run rebuilds progress.gif

def declared_png(width: int, height: int) -> bytes:
    """A PNG header that declares width x height, with no pixels after it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)))


def test_progress_gif_leaves_out_the_grids_it_cannot_read_and_the_run_goes_on(small_config, tmp_path):
    train(small_config(epochs=1), log=quiet)
    samples = tmp_path / "samples" / "test"
    (samples / "epoch_001.png").write_bytes(b"garbage, not a PNG")
    Image.new("RGB", (8, 8)).save(samples / "epoch_001 copy.png")
    (samples / "epoch_007.png").write_bytes(declared_png(30_000, 30_000))
    os.mkfifo(samples / "epoch_008.png")
    (samples / "epoch_009.png").symlink_to(samples / "epoch_000.png")
    lines = []
    state = train(small_config(epochs=2, resume=True), log=lines.append)
    assert state.epoch == 2
    notes = sorted(line for line in lines if line.startswith("note: progress.gif leaves out"))
    assert notes == [f"note: progress.gif leaves out {name}, which cannot be read ({why})" for name, why in (
        ("epoch_001.png", "not an image"), ("epoch_007.png", "too many pixels (decompression bomb)"))]
    with Image.open(samples / "progress.gif") as gif:  # epoch_000 and epoch_002: a FIFO or a link is no frame of
        assert gif.n_frames == 2                       # dcgan's, never opened (nor waited on)


# The torchrun variables outside torchrun

@pytest.mark.parametrize("variables", [{"RANK": "1"}, {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}])
def test_commands_other_than_train_ignore_the_rank_variables(tmp_path, capsys, monkeypatch, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, err = cli(capsys, "sample", "--run", "nosuch", "--checkpoints-dir", str(tmp_path))
    assert code == 2 and len(err) == 1 and err[0].startswith("error: no checkpoint at "), err


@pytest.mark.parametrize("variables, missing", [
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR, MASTER_PORT missing"),
    ({"RANK": "1"}, "WORLD_SIZE, MASTER_ADDR, MASTER_PORT missing"),
    ({"WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}, "RANK missing"),
    ({"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}, "do not fit together"),
    ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}, "do not fit together")])
def test_train_with_an_incomplete_set_of_torchrun_variables_says_what_is_missing(tmp_path, capsys, monkeypatch,
                                                                                 variables, missing):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, err = cli(capsys, *train_flags(tmp_path))
    assert code == 2 and len(err) == 1 and missing in err[0], err
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "samples").exists()


# A stop while the image cache is decoded by worker processes

def test_a_stop_while_the_decoding_workers_start_leaves_no_worker_failing_on_its_pipe(capfd, monkeypatch):
    """SIGTERM lands at the worst moment: a worker process just spawned, the data it reads at start-up not yet
    sent. The stop is held until the pool is up, then stops it whole; no worker prints a traceback."""
    spawn, spawned = multiprocessing.util.spawnv_passfds, []

    def spawn_then_stop(path, args, passfds):
        pid = spawn(path, args, passfds)
        if any("spawn_main" in str(arg) for arg in args):  # a worker (not the resource tracker)
            spawned.append(pid)
            if len(spawned) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
        return pid

    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", spawn_then_stop)
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM while the cache was built"):
        with signals_raise("the cache was built"):
            list(parallel_map(abs, list(range(-PARALLEL_FROM, PARALLEL_FROM)), workers=2))
    for pid in spawned:  # every worker has ended (the pool joined them, or here)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    assert len(spawned) == 2


@pytest.mark.parametrize("where, value, field", [("config.nz", 10**5000, "config.nz"),
                                                  ("config.lr", 10**401, "config.lr"),
                                                  ("epoch", 10**401, "epoch"), ("step", 10**5000, "step")],
                         ids=["nz of 5001 digits", "lr of 402 digits", "epoch of 402 digits", "step of 5001 digits"])
def test_a_number_of_any_size_in_a_checkpoint_is_one_line(good_checkpoint, sandbox, capsys, where,  # noqa: F811
                                                          value, field):
    path = sandbox.work / "huge.pt"
    payload = copy.deepcopy(good_checkpoint)
    holder, key = (payload["config"], where.split(".")[1]) if "." in where else (payload, where)
    holder[key] = value
    torch.save(payload, path)
    code, lines = sandbox(["sample", "--checkpoint", str(path), "--out", str(sandbox.named / "grid.png"),
                           *sandbox.folders], capsys)
    assert code == 2 and len(lines) == 1, lines
    # (torch's weights-only reader itself refuses an int of thousands of digits: the file is called corrupt)
    assert lines[0].startswith((f"error: checkpoint {path}: {field}", f"error: checkpoint {path} is corrupt")), lines
    assert len(lines[0]) < 400


def test_a_moment_of_another_length_but_the_same_strides_is_refused_on_resume(good_checkpoint, sandbox,  # noqa: F811
                                                                              capsys):
    """A 1-D moment one longer than its parameter: the strides match, only the shape tells."""
    payload = copy.deepcopy(good_checkpoint)
    state = payload["optimizer_d"]["state"]
    index = next(index for index, values in state.items() if values["exp_avg"].dim() == 1)
    state[index]["exp_avg"] = torch.zeros(state[index]["exp_avg"].numel() + 1)
    path = sandbox.work / "hostile.pt"
    torch.save(payload, path)
    code, lines = sandbox(["train", "--resume", "--run", "r", "--checkpoint", str(path), "--epochs", "3",
                           "--samples-dir", str(sandbox.named / "samples"), "--data-dir", str(sandbox.named / "data"),
                           "--device", "cpu", "--no-progress", *sandbox.folders], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: checkpoint {path} is incomplete"), lines
    assert "has shape" in lines[0]
