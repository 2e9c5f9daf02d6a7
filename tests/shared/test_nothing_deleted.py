"""Nothing of the user's is lost or overwritten: the tool deletes and writes only the files it made, by their
exact names, and never follows a link out of the folders named. Tried as a careful user and as an attacker."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan import train
from dcgan.cli import main
from dcgan.paths import LOCK_FILE, RunPaths, repo_root, run_paths
from dcgan.training.state import prune_checkpoints
from tests.helpers import quiet, tiny_config


def tree(*roots: Path) -> dict[str, tuple]:
    """Every path below the roots with what it is (size and modification time of files; link targets)."""
    found = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")) if Path(root).exists() else []:
            info = path.lstat()
            found[str(path)] = os.readlink(path) if path.is_symlink() else (info.st_size, info.st_mtime_ns)
    return found


def cli(capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err.splitlines()


def train_flags(root: Path, run: str = "test", *extra: str) -> list[str]:
    return ["train", "--data", "synthetic", "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--limit", "64", "--batch-size", "32", "--epochs", "1", "--run", run, "--no-progress", "--device", "cpu",
            "--data-dir", str(root / "data"), "--samples-dir", str(root / "samples"),
            "--checkpoints-dir", str(root / "checkpoints"), *extra]


def shapes_folder(folder: Path, count: int = 200) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


# --overwrite

def test_overwrite_deletes_only_the_files_dcgan_wrote_and_says_what_it_kept(small_config, tmp_path):
    state = train(small_config(epochs=2), log=quiet)
    samples, checkpoints = state.paths.samples, state.paths.checkpoints
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's")
    mine = {samples / "my_notes.txt": "notes", checkpoints / "my_notes.txt": "notes",
            samples / "keep" / "a.png": "folder", checkpoints / "keep" / "b.pt": "folder",
            samples / "epoch_001 copy.png": "a copy", checkpoints / "epoch_001_best.pt": "a best",
            checkpoints / "last.pt.bak": "a backup", samples / ".notes.tmp": "hidden", samples / "Real.png": "case",
            checkpoints / "tb" / "my_tb_notes.txt": "beside the event files"}
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (samples / "link.png").symlink_to(outside)
    (checkpoints / "tb" / "events.out.tfevents.1.host").write_bytes(b"old events")
    lines = []
    again = train(small_config(epochs=1, overwrite=True, seed=3), log=lines.append)
    assert all(path.read_text() == text for path, text in mine.items())
    assert outside.read_text() == "the user's" and (samples / "link.png").is_symlink()
    assert not (checkpoints / "tb" / "events.out.tfevents.1.host").exists()
    assert not (samples / "epoch_002.png").exists() and not (checkpoints / "epoch_002.pt").exists()
    assert again.epoch == 1 and (checkpoints / "epoch_001.pt").is_file()
    kept = [line for line in lines if line.startswith("--overwrite kept ")]
    assert len(kept) == 1 and kept[0].startswith("--overwrite kept 11 file(s) or folder(s) that dcgan did not write: ")


@pytest.mark.parametrize("case", ["run folder is the data folder", "samples inside the data folder",
                                  "checkpoints contain the data folder", "both run folders the same",
                                  "samples in the image cache", "checkpoints in the checkout's src"])
def test_a_run_folder_that_overlaps_what_it_must_not_is_refused_before_anything_is_written(tmp_path, capsys, case):
    data = shapes_folder(tmp_path / "dd" / "shapes")
    common = ["train", "--data", str(data), "--image-size", "32", "--ngf", "8", "--ndf", "8", "--limit", "64",
              "--batch-size", "32", "--epochs", "1", "--no-progress", "--device", "cpu", "--overwrite",
              "--data-dir", str(tmp_path / "data")]
    places = {"run folder is the data folder": ["--samples-dir", str(tmp_path / "dd"), "--checkpoints-dir",
                                                str(tmp_path / "dd"), "--run", "shapes"],
              "samples inside the data folder": ["--samples-dir", str(data), "--run", "x"],
              "checkpoints contain the data folder": ["--checkpoints-dir", str(tmp_path), "--run", "dd"],
              "both run folders the same": ["--samples-dir", str(tmp_path / "runs"), "--checkpoints-dir",
                                            str(tmp_path / "runs"), "--run", "x"],
              "samples in the image cache": ["--samples-dir", str(tmp_path / "data" / ".cache"), "--run", "x"],
              "checkpoints in the checkout's src": ["--checkpoints-dir", str(repo_root() / "src"), "--run", "dcgan"]}
    (tmp_path / "data" / ".cache").mkdir(parents=True)
    watched = [tmp_path, repo_root() / "src", repo_root() / "samples", repo_root() / "checkpoints"]
    before = tree(*watched)
    code, err = cli(capsys, *common, *places[case])
    assert code == 2 and len(err) == 1 and err[0].startswith("error: the run folder "), err
    assert "choose another --" in err[0]
    assert tree(*watched) == before  # not an image gone, no lock, no folder made
    assert len(list(data.glob("*.png"))) == 200


# --keep-last and the epoch files

def test_keep_last_deletes_only_epoch_checkpoints_by_exact_name_in_epoch_order(tmp_path):
    paths = RunPaths("r", tmp_path / "samples", tmp_path / "checkpoints")
    paths.checkpoints.mkdir(parents=True)
    for name in ("epoch_998.pt", "epoch_999.pt", "epoch_1000.pt", "epoch_001_best.pt", "epoch_001 copy.pt",
                 "epoch_12.pt", "Epoch_002.pt", "epoch_003.pt.bak", "last.pt"):
        (paths.checkpoints / name).write_text(name)
    (paths.checkpoints / "epoch_004.pt").mkdir()  # a folder, not a checkpoint
    assert [path.name for path in paths.epoch_checkpoints()] == ["epoch_998.pt", "epoch_999.pt", "epoch_1000.pt"]
    prune_checkpoints(paths, 2)
    assert sorted(path.name for path in paths.checkpoints.iterdir()) == sorted(
        ["epoch_999.pt", "epoch_1000.pt", "epoch_001_best.pt", "epoch_001 copy.pt", "epoch_12.pt", "Epoch_002.pt",
         "epoch_003.pt.bak", "last.pt", "epoch_004.pt"])


def test_keep_last_1_in_a_run_keeps_the_users_best_checkpoint(small_config, tmp_path):
    checkpoints = tmp_path / "checkpoints" / "test"
    checkpoints.mkdir(parents=True)
    (checkpoints / "epoch_001_best.pt").write_text("mine")
    train(small_config(epochs=3, keep_last=1, limit=64, overwrite=True), log=quiet)
    assert sorted(path.name for path in checkpoints.glob("*.pt")) == ["epoch_001_best.pt", "epoch_003.pt", "last.pt"]


# export --out

@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    train(tiny_config(root, limit=64, epochs=1, run="e"), log=quiet)
    return root


def export(capsys, root: Path, out: Path) -> tuple[int, list[str]]:
    return cli(capsys, "export", "--run", "e", "--checkpoints-dir", str(root / "checkpoints"), "--out", str(out))


EXPORT = ["README.md", "config.json", "model.safetensors", "samples.png"]


def test_export_writes_into_a_new_or_empty_folder_and_replaces_an_earlier_export_whole(exported_run, tmp_path,
                                                                                         capsys):
    out = tmp_path / "out"
    assert export(capsys, exported_run, out)[0] == 0 and sorted(p.name for p in out.iterdir()) == EXPORT
    first = (out / "model.safetensors").stat().st_ino
    assert export(capsys, exported_run, out)[0] == 0  # an earlier export: replaced, folder and all
    assert sorted(p.name for p in out.iterdir()) == EXPORT and (out / "model.safetensors").stat().st_ino != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(capsys, exported_run, empty)[0] == 0 and sorted(p.name for p in empty.iterdir()) == EXPORT


@pytest.mark.parametrize("case", ["the user's README", "a folder named config.json", "an export and a note",
                                  "a link as --out", "a foreign config.json", "a link named model.safetensors"])
def test_export_refuses_a_folder_holding_anything_but_an_earlier_export(exported_run, tmp_path, capsys, case):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"the user's weights")
    if case == "the user's README":
        (out / "README.md").write_text("# my project")
    elif case == "a folder named config.json":
        (out / "config.json").mkdir()
    elif case == "an export and a note":
        assert export(capsys, exported_run, out)[0] == 0
        (out / "note.txt").write_text("mine")
    elif case == "a link as --out":
        out.rmdir()
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    elif case == "a foreign config.json":
        (out / "config.json").write_text('{"model_type": "bert"}')
    else:
        (out / "model.safetensors").symlink_to(target)
    before = tree(tmp_path)
    code, err = export(capsys, exported_run, out)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: --out {out} "), err
    assert tree(tmp_path) == before and target.read_bytes() == b"the user's weights"


def test_a_failed_export_leaves_the_earlier_export_as_it_was(exported_run, tmp_path, capsys, monkeypatch):
    from dcgan.files import WriteError
    from dcgan.pictures import model_card

    out = tmp_path / "out"
    assert export(capsys, exported_run, out)[0] == 0
    before = tree(out)

    def full_disk(*args, **kwargs):
        raise WriteError("cannot write samples.png (No space left on device): free some disk space")

    monkeypatch.setattr(model_card, "save_grid", full_disk)
    code, err = export(capsys, exported_run, out)
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0]
    assert tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# The run's lock

@pytest.mark.parametrize("kind", ["a link to a file elsewhere", "a folder", "a FIFO", "a dangling link"])
def test_a_lock_file_that_is_not_a_plain_file_is_refused_and_nothing_is_written_through_it(tmp_path, capsys, kind):
    checkpoints = tmp_path / "checkpoints" / "test"
    checkpoints.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("the user's")
    lock = checkpoints / LOCK_FILE
    {"a link to a file elsewhere": lambda: lock.symlink_to(elsewhere), "a folder": lock.mkdir,
     "a FIFO": lambda: os.mkfifo(lock), "a dangling link": lambda: lock.symlink_to(tmp_path / "nothing")}[kind]()
    code, err = cli(capsys, *train_flags(tmp_path))
    assert code == 2 and len(err) == 1 and f"{lock} is a" in err[0] and "move it away" in err[0], err
    assert elsewhere.read_text() == "the user's" and not (tmp_path / "nothing").exists()
    assert sorted(path.name for path in checkpoints.iterdir()) == [LOCK_FILE]


@contextlib.contextmanager
def read_only_mount(folder: Path):
    """`folder` (with what is in it) remounted read-only; skips where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(folder), str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount (a read-only bind mount)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_resume_on_a_read_only_checkpoints_folder_is_one_line(tmp_path, capsys):
    assert cli(capsys, *train_flags(tmp_path))[0] == 0
    with read_only_mount(tmp_path / "checkpoints"):
        before = tree(tmp_path)
        code, err = cli(capsys, *train_flags(tmp_path, "test", "--resume", "--epochs", "2"))
        assert code == 2 and len(err) == 1 and "read-only" in err[0], err
        assert tree(tmp_path) == before


@pytest.mark.parametrize("flag", ["--logdir", "--samples-dir", "--checkpoints-dir"])
def test_an_output_folder_on_a_read_only_mount_is_refused_at_the_door(tmp_path, capsys, flag):
    with read_only_mount(tmp_path / "ro"):
        flags = train_flags(tmp_path) + ["--tensorboard"] * (flag == "--logdir")
        flags += [flag, str(tmp_path / "ro" / "logs")]
        code, err = cli(capsys, *flags)
        assert code == 2 and len(err) == 1 and f"{flag} {tmp_path / 'ro' / 'logs'} cannot be written" in err[0], err
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "samples").exists()


@pytest.mark.parametrize("flag", ["--logdir", "--samples-dir", "--checkpoints-dir", "--data-dir"])
def test_a_folder_flag_under_a_file_is_refused_at_the_door(tmp_path, capsys, flag):
    (tmp_path / "a-file").write_text("")
    flags = train_flags(tmp_path) + ["--tensorboard"] * (flag == "--logdir") + [flag, str(tmp_path / "a-file" / "x")]
    code, err = cli(capsys, *flags)
    under = tmp_path / "a-file"
    assert code == 2 and err == [f"error: {flag} {under / 'x'} lies under {under}, which is a file, not a folder: "
                                 "name a folder (it is made when missing)"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


def test_sample_never_writes_into_a_run_folder_through_a_link(small_config, tmp_path, capsys):
    """The default --out of sample lies in samples/<run>/, written by replacing a file atomically: a link placed
    there is replaced, its target left alone."""
    train(small_config(epochs=1), log=quiet)
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"the user's picture")
    paths = run_paths("test", str(tmp_path / "samples"), str(tmp_path / "checkpoints"))
    link = paths.samples / "sample_seed0.png"
    link.symlink_to(elsewhere)
    assert cli(capsys, "sample", "--run", "test", "--checkpoints-dir", str(tmp_path / "checkpoints"), "--out",
               str(link), "--n", "4")[0] == 0
    assert elsewhere.read_bytes() == b"the user's picture" and not link.is_symlink()


@pytest.mark.parametrize("folder", ["samples", "checkpoints"])
def test_a_run_folder_that_is_a_link_is_refused_and_nothing_is_written_through_it(tmp_path, capsys, folder):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "test").symlink_to(elsewhere)
    code, err = cli(capsys, *train_flags(tmp_path))
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: the run folder {tmp_path / folder / 'test'} "
                                                             "is a link"), err
    assert list(elsewhere.iterdir()) == []
