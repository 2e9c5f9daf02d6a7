"""One RunReference for sample, evaluate, nearest and export: the four commands resolve a run the same way, a
missing reference is the same one line everywhere, and the commands are called by keywords from Python."""

import pytest
import torch

import dcgan
from dcgan.cli import main
from dcgan.errors import UserError
from dcgan.metrics.evaluate import evaluate
from dcgan.metrics.nearest import nearest
from dcgan.models import runs
from dcgan.models.runs import MISSING, RunReference, load_run
from dcgan.pictures.commands import export, sample

COMMANDS = ("sample", "evaluate", "nearest", "export")


def quiet(line: str) -> None:
    pass


def resolved(monkeypatch, capsys, argv_of) -> dict:
    """command -> the run it loaded for the command line argv_of(command); each stops right after loading."""
    loaded, real_load = {}, RunReference.load
    for command in COMMANDS:
        def load_then_stop(reference, command=command):
            loaded[command] = real_load(reference)
            raise UserError("stopped after loading")

        monkeypatch.setattr(RunReference, "load", load_then_stop)
        assert main(argv_of(command)) == 2
        assert capsys.readouterr().err == "error: stopped after loading\n"
    monkeypatch.setattr(RunReference, "load", real_load)
    return loaded


def same_run(loaded: dict) -> tuple:
    """What the commands loaded, checked equal for every command (the samples and data folders are each command's
    own); returns what it was."""
    first = loaded["sample"]
    assert set(loaded) == set(COMMANDS)
    for command, run in loaded.items():
        assert (run.source, run.name, run.epoch, run.step, run.weights, run.device, run.cfg, run.paths.checkpoints) == (
            first.source, first.name, first.epoch, first.step, first.weights, first.device, first.cfg,
            first.paths.checkpoints), command
        assert all(torch.equal(a, b) for a, b in zip(run.generator.state_dict().values(),
                                                     first.generator.state_dict().values())), command
    return first.source.name, first.name, first.epoch, first.weights


def test_the_four_commands_resolve_a_run_the_same_way_by_name_and_by_checkpoint(small_config, tmp_path, capsys,
                                                                               monkeypatch):
    train = dcgan.train(small_config(ema=0.9), log=quiet)
    root = str(tmp_path / "checkpoints")
    folders = {"sample": ["--samples-dir", str(tmp_path / "samples")], "evaluate": ["--data-dir", str(tmp_path)],
               "nearest": ["--samples-dir", str(tmp_path / "samples"), "--data-dir", str(tmp_path)],
               "export": ["--out", str(tmp_path / "shared")]}

    def argv(*reference):
        return lambda command: [command, *reference, "--device", "cpu", *folders[command]]

    assert same_run(resolved(monkeypatch, capsys, argv("--run", "test", "--checkpoints-dir", root))) == (
        "last.pt", "test", 2, "ema")
    first = str(train.paths.epoch_checkpoint(1))
    assert same_run(resolved(monkeypatch, capsys, argv("--checkpoint", first))) == ("epoch_001.pt", "test", 1, "ema")
    assert same_run(resolved(monkeypatch, capsys, argv("--run", "test", "--checkpoints-dir", root, "--weights",
                                                       "raw"))) == ("last.pt", "test", 2, "raw")
    # an export folder: sample, evaluate and nearest load it; export refuses it, in one line
    assert main(["export", "--run", "test", "--checkpoints-dir", root, "--out", str(tmp_path / "shared")]) == 0
    capsys.readouterr()
    by_folder = runs.load_generator(tmp_path / "shared")
    assert (by_folder.name, by_folder.epoch, by_folder.weights) == ("test", 2, "ema")
    for command in ("sample", "evaluate", "nearest"):
        assert main([command, "--checkpoint", str(tmp_path / "shared"), "--weights", "raw", "--device", "cpu"]) == 2
        assert capsys.readouterr().err == (f"error: export {tmp_path / 'shared'} holds ema weights, not raw: use "
                                           "--weights auto, or export the run again with --weights raw\n")
    assert main(["export", "--checkpoint", str(tmp_path / "shared"), "--out", str(tmp_path / "again")]) == 2
    assert "export reads a checkpoint file" in capsys.readouterr().err


def test_a_missing_reference_is_the_same_one_line_for_every_command(tmp_path, capsys):
    for command in COMMANDS:
        assert main([command, *(["--out", str(tmp_path / "out")] if command == "export" else [])]) == 2
        assert capsys.readouterr().err == f"error: {MISSING}\n", command
    assert "needs --run NAME or --checkpoint PATH" in MISSING
    with pytest.raises(UserError, match="needs --run NAME or --checkpoint PATH"):
        load_run(device="cpu")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_commands_are_called_by_keywords_from_python(small_config, tmp_path):
    dcgan.train(small_config(epochs=1), log=quiet)
    reference = RunReference(run="test", checkpoints_dir=str(tmp_path / "checkpoints"),
                             samples_dir=str(tmp_path / "samples"), device="cpu")
    path = sample(reference, n=4, seed=1)
    assert path == tmp_path / "samples" / "test" / "sample_seed1.png" and path.stat().st_size > 0
    for command in (sample, evaluate, nearest):
        with pytest.raises(TypeError):  # a command's own settings are keywords, never positions
            command(reference, 4)
    out = export(reference, tmp_path / "shared", say=quiet)
    run = load_run(checkpoint=str(out), device="cpu")
    assert (run.name, run.epoch, run.weights, run.saved["weights"]) == ("test", 1, "raw", "raw")
    with pytest.raises(UserError, match="has no moving average of G .*: use --weights raw"):
        RunReference(run="test", checkpoints_dir=str(tmp_path / "checkpoints"), weights="ema").load()
    with pytest.raises(UserError, match="unknown --weights 'best': use auto, ema, raw"):
        RunReference(run="test", weights="best")
    with pytest.raises(UserError, match="is not a plain folder name"):
        RunReference(run="../test")
    assert (dcgan.RunReference, dcgan.load_run, dcgan.load_generator, dcgan.sample, dcgan.export) == (
        RunReference, load_run, runs.load_generator, sample, export)
