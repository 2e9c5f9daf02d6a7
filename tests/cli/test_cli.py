"""The command line, end to end on synthetic data, and every user mistake as one line with exit code 2."""

import dataclasses
import subprocess
import sys

import pytest
import torch
from PIL import Image

from dcgan.cli import main
from dcgan.config import TrainConfig, flag
from dcgan.errors import UserError
from dcgan.models.checkpoint import load_checkpoint
from tests.helpers import dcgan, tiny_run_flags


def test_train_resume_and_sample_from_the_command_line(tmp_path):
    straight = dcgan("train", *tiny_run_flags(tmp_path, "straight"), "--epochs", 3, "--flip")
    assert straight.returncode == 0, straight.stderr
    assert "epoch 3/3" in straight.stdout

    first = dcgan("train", *tiny_run_flags(tmp_path, "split"), "--epochs", 1, "--flip")
    assert first.returncode == 0, first.stderr
    # resume names only the run, its folders and the new epoch count: the rest comes from the checkpoint
    resumed = dcgan("train", "--run", "split", "--resume", "--epochs", 3, "--no-progress",
                    "--data-dir", tmp_path / "data", "--samples-dir", tmp_path / "samples",
                    "--checkpoints-dir", tmp_path / "checkpoints")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "epoch 3/3" in resumed.stdout
    a = load_checkpoint(tmp_path / "checkpoints" / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "checkpoints" / "split" / "last.pt")
    assert b["config"]["flip"] is True and b["config"]["ngf"] == 8
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])

    out = tmp_path / "grid.png"
    sample = dcgan("sample", "--run", "straight", "--checkpoints-dir", tmp_path / "checkpoints",
                   "--n", 16, "--seed", 1, "--out", out)
    assert sample.returncode == 0, sample.stderr
    assert Image.open(out).size == (4 * 64 + 5 * 2, 4 * 64 + 5 * 2)  # 16 images, 4 x 4, cells enlarged to 64
    again = tmp_path / "again.png"
    dcgan("sample", "--checkpoint", tmp_path / "checkpoints" / "straight" / "epoch_003.pt", "--n", 16,
          "--seed", 1, "--out", again)
    assert again.read_bytes() == out.read_bytes()  # same checkpoint, same seed, same images
    other = tmp_path / "other.png"
    assert main(["sample", "--checkpoint", str(tmp_path / "checkpoints" / "straight" / "last.pt"), "--n", "16",
                 "--seed", "2", "--out", str(other)]) == 0
    assert other.read_bytes() != out.read_bytes()


def test_every_option_is_documented_in_help():
    train_help = dcgan("train", "--help")
    assert train_help.returncode == 0
    text = " ".join(train_help.stdout.split())
    for spec in dataclasses.fields(TrainConfig):
        assert f"--{flag(spec.name)}" in text
        assert spec.metadata["help"].split()[0] in text
    sample_help = dcgan("sample", "--help").stdout
    for option in ("--run", "--checkpoint", "--checkpoints-dir", "--n", "--seed", "--nrow", "--out", "--device"):
        assert option in sample_help
    assert "train" in dcgan("--help").stdout


def expect_user_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err, err


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dirs = ["--data-dir", str(tmp_path / "data"), "--checkpoints-dir", str(tmp_path / "ck"),
            "--samples-dir", str(tmp_path / "s"), "--no-progress"]
    expect_user_error(capsys, ["train", "--data", "imagenet", *dirs], "unknown dataset 'imagenet'")
    expect_user_error(capsys, ["train", "--data", "./missing/faces", *dirs], "image folder ./missing/faces not found")
    (tmp_path / "empty").mkdir()
    expect_user_error(capsys, ["train", "--data", str(tmp_path / "empty"), *dirs], "no images")
    expect_user_error(capsys, ["train", "--image-size", "50", *dirs], "unsupported image size 50")
    expect_user_error(capsys, ["train", "--run", "nothing", "--resume", *dirs], "no checkpoint at")
    expect_user_error(capsys, ["train", "--device", "cpu", "--epochs", "0", *dirs], "--epochs must be at least 1")

    tiny = [str(v) for v in tiny_run_flags(tmp_path, "small")]
    assert main(["train", *tiny, "--epochs", "1"]) == 0
    capsys.readouterr()
    ck_dirs = ["--checkpoints-dir", str(tmp_path / "checkpoints"), "--samples-dir", str(tmp_path / "samples"),
               "--data-dir", str(tmp_path / "data"), "--no-progress"]
    expect_user_error(capsys, ["train", "--run", "small", "--resume", "--epochs", "2", "--image-size", "64", *ck_dirs],
                      "trained with image_size=32 but this run asks for image_size=64")
    expect_user_error(capsys, ["train", *tiny, "--epochs", "2"], "already has checkpoints")
    (tmp_path / "checkpoints" / "small" / "last.pt").write_bytes(b"\x00garbage")
    expect_user_error(capsys, ["train", "--run", "small", "--resume", "--epochs", "2", *ck_dirs], "is corrupt")
    expect_user_error(capsys, ["sample", "--run", "small", "--checkpoints-dir", str(tmp_path / "checkpoints")],
                      "is corrupt")
    expect_user_error(capsys, ["sample", "--run", "ghost", "--checkpoints-dir", str(tmp_path / "checkpoints")],
                      "no checkpoint at")
    expect_user_error(capsys, ["sample"], "needs --run NAME or --checkpoint PATH")


def test_debug_shows_the_full_error(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        main(["train", "--debug", "--data", "nosuchset", "--data-dir", str(tmp_path)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_a_gpu(capsys, tmp_path):
    expect_user_error(capsys, ["train", "--device", "cuda", "--data-dir", str(tmp_path)], "no CUDA GPU")


def test_malformed_flags_are_one_line_too():
    result = dcgan("train", "--epochs", "many")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "invalid int value: 'many'" in result.stderr
    unknown = dcgan("train", "--learning-rate", "1")
    assert unknown.returncode == 2 and "unrecognized arguments" in unknown.stderr


def test_errors_from_the_real_entry_point_carry_no_traceback(tmp_path):
    result = dcgan("train", "--data", tmp_path / "nope", "--data-dir", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: image folder") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_each_epoch_is_one_line_in_a_terminal_too(tmp_path):
    """The epoch's bar (on stderr) is cleared when the epoch ends: what stays on screen is the epoch's line."""
    flags = [str(value) for value in tiny_run_flags(tmp_path, "lines") if value != "--no-progress"]
    out = subprocess.run([sys.executable, "-m", "dcgan", "train", *flags, "--epochs", "2", "--progress"],
                         capture_output=True)  # bytes: text mode would turn the bar's carriage returns into lines
    assert out.returncode == 0, out.stderr
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    for epoch in (1, 2):
        assert sum(line.startswith(f"epoch {epoch}/2: loss_D") for line in stdout.splitlines()) == 1
    assert "epoch 1/2:" in stderr and "epoch 2/2:" in stderr  # the bars ran...
    on_screen = [line.rsplit("\r", 1)[-1] for line in stderr.split("\n")]  # what a terminal keeps of each line
    assert not [line for line in on_screen if line.startswith("epoch ")]  # ...and were cleared at the epoch's end
