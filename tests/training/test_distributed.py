"""Multi-process training with torchrun and DDP, on the CPU (gloo backend, 2 processes): identical networks on
every rank, each rank its own share of every batch, files written once (by rank 0), and resume."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcgan import TrainConfig, train
from dcgan.errors import UserError
from dcgan.models.checkpoint import load_checkpoint
from dcgan.training.distributed import TorchrunWorld
from dcgan.training.history import read_history_csv
from dcgan.training.state import World
from tests.helpers import small_disk, tiny_settings

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("distributed_worker.py")
IMAGES, BATCH = 96, 32  # 3 global batches an epoch, 16 images on each of 2 ranks


def torchrun(*args, processes=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def settings(root: Path, run: str, **overrides) -> dict:
    return tiny_settings(root, **{**dict(batch_size=BATCH, limit=IMAGES, flip=True, log_every=1, run=run), **overrides})


def as_flags(values: dict) -> list[str]:
    flags = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        flags += ([flag] if value else [f"--no-{name.replace('_', '-')}"]) if isinstance(value, bool) \
            else [flag, str(value)]
    return flags


def test_two_processes_train_one_model_on_their_own_shares_and_write_once(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    result = torchrun(WORKER, json.dumps(settings(tmp_path, "ddp")), reports)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr  # (torch 2.14 warns about DDP's older broadcast_buffers)
    rank0, rank1 = (torch.load(reports / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (rank0["world"], rank1["world"]) == (2, 2) and rank0["step"] == rank1["step"] == 2 * IMAGES // BATCH

    for net in ("generator", "discriminator"):  # one model: the same weights on both ranks, trained and finite
        for name, tensor in rank0[net].items():
            assert torch.equal(tensor, rank1[net][name]), f"{net}.{name} differs between the ranks"
    # each rank trained on half of every global batch, and the halves differ
    assert [shape[0] for shape, _ in rank0["batches"]] == [BATCH // 2] * 6
    assert all(mine[1] != theirs[1] for mine, theirs in zip(rank0["batches"], rank1["batches"]))

    folder = tmp_path / "checkpoints" / "ddp"
    assert rank1["writes"] == []  # rank 0 alone writes samples, checkpoints and history
    written = {Path(line.split(" ", 1)[1]).name for line in rank0["writes"]}
    assert {"last.pt", "epoch_002.pt", "history.csv", "config.json", "epoch_002.png", "losses.png"} <= written
    history = read_history_csv(folder / "history.csv")
    assert [row["step"] for row in history if row["kind"] == "step"] == list(range(1, 7))
    assert all(math.isfinite(row[key]) for row in history for key in ("loss_D", "loss_G", "D_x", "D_G_z"))
    assert result.stdout.count("epoch 2/2:") == 1  # one process prints
    assert not (folder / "train.lock").exists()  # rank 0 held the run's lock for both, and released it

    # the same run from the command line, in two parts: resume under torchrun ends with the same weights
    part = settings(tmp_path, "split", epochs=1)
    first = torchrun("-m", "dcgan", "--", "train", *as_flags(part))  # --: torchrun would take --run as its own
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun("-m", "dcgan", "--", "train", *as_flags({**part, "epochs": 2, "resume": True}))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout and second.stdout.count("epoch 2/2:") == 1
    resumed = load_checkpoint(tmp_path / "checkpoints" / "split" / "last.pt")
    assert len(resumed["rng"]["ranks"]) == 2 and resumed["step"] == 6
    for net in ("generator", "discriminator"):
        for name, tensor in rank0[net].items():
            assert torch.equal(tensor, resumed[net][name]), f"{net}.{name} differs after resume"

    # a run of 2 processes continues in one (new noise streams, the same data order)
    alone = train(TrainConfig(**{**part, "epochs": 3, "resume": True}), log=lambda line: None)
    assert alone.setup.world.size == 1 and alone.step == 9 and alone.history[-1]["kind"] == "epoch"


def test_a_mistake_under_torchrun_is_reported_once(tmp_path):
    result = torchrun("-m", "dcgan", "--", "train", *as_flags(settings(tmp_path, "odd", batch_size=33)))
    assert "error: --batch-size 33 does not split evenly over 2 processes: use a multiple of 2" in result.stderr
    assert result.stderr.count("error: --batch-size") == 1 and result.returncode != 0
    # our line comes first; torchrun then adds its own report of the processes that failed
    assert "Traceback" not in result.stderr.split("error: --batch-size")[0]


def test_a_run_owned_by_another_process_stops_every_rank(tmp_path):
    """Rank 0 takes the lock for all ranks; when another process holds it, both ranks stop, one line said."""
    from dcgan.lock import RunLock

    with RunLock(tmp_path / "checkpoints" / "held", "held"):
        result = torchrun("-m", "dcgan", "--", "train", *as_flags(settings(tmp_path, "held")))
    assert result.returncode != 0  # every rank stopped (torchrun returns once all have), none left waiting
    assert result.stderr.count(f"error: run 'held' is being trained by process {os.getpid()}") == 1
    assert not (tmp_path / "checkpoints" / "held" / "config.json").exists()


def test_each_rank_takes_its_slice_of_every_global_batch():
    order = torch.arange(12)  # 3 global batches of 4
    shares = [TorchrunWorld(rank, 2).shard(order, 4) for rank in (0, 1)]
    assert shares[0].tolist() == [0, 1, 4, 5, 8, 9] and shares[1].tolist() == [2, 3, 6, 7, 10, 11]
    assert World().shard(order, 4) is order


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    with pytest.raises(UserError, match="--batch-size 100 does not split evenly over 3 processes"):
        TorchrunWorld(0, 3).local_batch(100)


def test_sync_bn_without_torchrun_or_a_gpu_is_refused(small_config):
    from dcgan import train

    with pytest.raises(UserError, match="--sync-bn applies to runs started with torchrun"):
        train(small_config(sync_bn=True))


def test_sigterm_stops_every_rank_at_the_same_step_and_the_run_resumes(tmp_path):
    run = settings(tmp_path, "term", limit=256, epochs=500)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dcgan",
               "--", "train", *as_flags(run)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("epoch 1/500"):
            child.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
            break
    _, stderr = child.communicate(timeout=180)
    assert child.returncode != 0 and "stopped by SIGTERM at " in stderr
    saved = load_checkpoint(tmp_path / "checkpoints" / "term" / "last.pt")
    assert len(saved["rng"]["ranks"]) == 2 and saved["step"] >= 8
    resumed = torchrun("-m", "dcgan", "--", "train", *as_flags({**run, "epochs": saved["epoch"] + 2, "resume": True}))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at epoch {saved['epoch']}, step {saved['step']}" in resumed.stdout


def test_a_full_tensorboard_log_stops_every_rank_and_rank_0_says_so_once(tmp_path):
    """TensorBoard is written by rank 0 alone; its failure is agreed at the next log step, so no rank is left
    waiting in a collective (to fail there with a traceback of its own when rank 0 leaves)."""
    with small_disk(tmp_path / "disk", "24k") as disk:
        run = settings(tmp_path, "tb", epochs=20, tensorboard=True, logdir=str(disk))
        result = torchrun("-m", "dcgan", "--", "train", *as_flags(run))
    ours = f"error: cannot write TensorBoard's log in {disk / 'tb'} (No space left on device)"
    assert result.returncode != 0 and result.stderr.count(ours) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr.split(ours)[0] and "Exception in thread" not in result.stderr
    assert "[rank1]" not in result.stderr  # rank 1 stopped at the same agreement, quietly (torchrun reports after)
    saved = load_checkpoint(tmp_path / "checkpoints" / "tb" / "last.pt")
    assert len(saved["rng"]["ranks"]) == 2 and 1 <= saved["epoch"] < 20
