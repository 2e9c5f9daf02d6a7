"""Interruptions and faults during training: signals, mid-epoch checkpoints, kills during a save, a full disk or
read-only folder, and non-finite losses. Nothing the user had is lost; a resumed run continues exactly."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from dcgan import train
from dcgan.errors import TrainingStopped
from dcgan.files import WriteError
from dcgan.models.checkpoint import load_checkpoint
from dcgan.training.callbacks import Callback
from tests.helpers import assert_same_training_state, dcgan, quiet, tiny_run_flags, without_timing

# flips, label smoothing, DiffAugment and EMA: every random stream and every piece of state a resume must restore
OPTIONS = dict(flip=True, real_label=0.9, diffaugment="translation,cutout", ema=0.9)


class AtStep(Callback):
    """Calls `action(state)` once, at the end of global step `step`."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_step_end(self, state):
        if state.step == self.step:
            self.action(state)


def send(number):
    return lambda state: os.kill(os.getpid(), number)


@pytest.mark.parametrize("number, step", [(signal.SIGINT, 6), (signal.SIGTERM, 3)])
def test_a_signal_saves_the_step_and_resume_ends_with_the_same_weights(small_config, tmp_path, number, step):
    straight = train(small_config(run="straight", epochs=3, **OPTIONS), log=quiet)
    with pytest.raises(TrainingStopped) as stop:
        train(small_config(run="split", epochs=3, **OPTIONS), callbacks=[AtStep(step, send(number))], log=quiet)
    last = tmp_path / "checkpoints" / "split" / "last.pt"
    name = signal.Signals(number).name
    assert stop.value.exit_code == 128 + number
    assert str(stop.value) == (f"stopped by {name} at epoch 2, step {step} ({step - 4} of 4 steps into the epoch): "
                               f"saved {last}; continue with --resume") if step > 4 else \
        str(stop.value).startswith(f"stopped by {name} at epoch 1, step {step} ({step} of 4 steps")
    saved = load_checkpoint(last)
    assert (saved["step"], saved["epoch_step"]) == (step, step % 4)
    assert signal.getsignal(number) in (signal.default_int_handler, signal.SIG_DFL)  # handlers given back

    resumed = train(small_config(run="split", epochs=3, resume=True, **OPTIONS), log=quiet)
    assert resumed.step == straight.step == 12
    assert_same_training_state(straight, resumed)
    for name in resumed.nets.ema_generator.state_dict():
        assert torch.equal(resumed.nets.ema_generator.state_dict()[name],
                           straight.nets.ema_generator.state_dict()[name])
    assert without_timing(resumed.history) == without_timing(straight.history)  # the unfinished epoch's means too


def test_a_second_ctrl_c_quits_at_once(small_config):
    def twice(state):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(small_config(epochs=2), callbacks=[AtStep(2, twice)], log=quiet)


def test_checkpoint_every_steps_bounds_what_a_crash_loses(small_config, tmp_path):
    straight = train(small_config(run="straight", epochs=2), log=quiet)

    def crash(state):
        raise RuntimeError("the machine went away")

    seen = []
    record = AtStep(3, lambda state: seen.append(load_checkpoint(state.paths.last_checkpoint)["step"]))
    with pytest.raises(RuntimeError):
        train(small_config(run="crash", epochs=2, checkpoint_every_steps=2), callbacks=[record, AtStep(7, crash)],
              log=quiet)
    assert seen == [2]
    saved = load_checkpoint(tmp_path / "checkpoints" / "crash" / "last.pt")
    assert (saved["epoch"], saved["step"], saved["epoch_step"]) == (1, 6, 2)
    resumed = train(small_config(run="crash", epochs=2, checkpoint_every_steps=2, resume=True), log=quiet)
    assert_same_training_state(straight, resumed)


def train_in_child(run: str) -> str:
    """The end of a child script: train a tiny 3-epoch run named `run` in the folder given as its argument."""
    return textwrap.dedent(f"""
        root = sys.argv[1]
        train(TrainConfig(data="synthetic", image_size=32, ngf=8, ndf=8, nz=16, batch_size=32, limit=128, epochs=3,
                          run={run!r}, data_dir=root + "/data", samples_dir=root + "/samples",
                          checkpoints_dir=root + "/checkpoints", progress=False, device="cpu"))
    """)


KILL_DURING_SAVE = textwrap.dedent("""
    import sys, time
    import dcgan.files
    from dcgan import TrainConfig, train

    real_fsync, saves = dcgan.files.os.fsync, []

    def slow_fsync(fd):  # the second epoch's last.pt is being written (its epoch file follows): hang until killed
        name = dcgan.files.os.readlink(f"/proc/self/fd/{fd}")
        if ".pt." in name:
            saves.append(name)
            if len(saves) == 2:
                print("SAVING", flush=True)
                time.sleep(600)
        real_fsync(fd)

    dcgan.files.os.fsync = slow_fsync
""") + train_in_child("killed")


def test_sigkill_during_a_save_leaves_the_previous_last_pt_loadable(small_config, tmp_path):
    script = tmp_path / "kill_during_save.py"
    script.write_text(KILL_DURING_SAVE)
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.strip() == "SAVING":
                break
        child.kill()
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    folder = tmp_path / "checkpoints" / "killed"
    leftovers = list(folder.glob(".*.pt.*.tmp"))
    assert leftovers, "the kill did not land inside the save"
    saved = load_checkpoint(folder / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 4)  # the epoch-1 checkpoint, whole

    resumed = train(small_config(run="killed", epochs=3, resume=True), log=quiet)
    assert resumed.step == 12 and not list(folder.glob(".*.tmp"))  # the stale temporary file is cleaned up


KILL_BETWEEN_TWO_WRITES = textwrap.dedent("""
    import os, signal, sys
    import dcgan.training.state
    from dcgan import TrainConfig, train

    def kill_instead(first, path):  # the first file of the save is written: die before the second
        os.kill(os.getpid(), signal.SIGKILL)

    dcgan.training.state.atomic_link = kill_instead
""") + train_in_child("cut")


def test_a_kill_between_the_two_files_of_a_save_leaves_a_run_that_resumes(small_config, tmp_path):
    script = tmp_path / "kill_between.py"
    script.write_text(KILL_BETWEEN_TWO_WRITES)
    child = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    folder = tmp_path / "checkpoints" / "cut"
    assert load_checkpoint(folder / "last.pt")["epoch"] == 1  # the save's first file is the one resume reads
    lines = []
    resumed = train(small_config(run="cut", epochs=3, resume=True), log=lines.append)
    assert resumed.epoch == 3 and any("resuming from" in line and "last.pt at epoch 1" in line for line in lines)


def test_a_run_whose_last_pt_is_lost_resumes_from_its_newest_whole_epoch_and_says_so(small_config, tmp_path):
    train(small_config(epochs=3), log=quiet)
    folder = tmp_path / "checkpoints" / "test"
    (folder / "last.pt").unlink()
    (folder / "epoch_003.pt").write_bytes((folder / "epoch_003.pt").read_bytes()[:1000])  # and the newest cut short
    lines = []
    resumed = train(small_config(epochs=4, resume=True), log=lines.append)
    [said] = [line for line in lines if line.startswith("resuming from")]
    assert said.startswith(f"resuming from {folder / 'epoch_002.pt'} at epoch 2")
    assert "last.pt is missing" in said and "epoch_002.pt is the newest whole checkpoint" in said
    assert resumed.epoch == 4 and load_checkpoint(folder / "last.pt")["epoch"] == 4


def failing_fsync(number):
    real = os.fsync

    def fsync(fd):  # every checkpoint write fails: the epoch's file, then last.pt (linked to it, or copied)
        if ".pt." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(number, os.strerror(number))
        real(fd)

    return fsync


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_disk_or_read_only_folder_is_a_clear_error_and_keeps_the_last_checkpoint(small_config, tmp_path,
                                                                                      monkeypatch, number):
    train(small_config(epochs=1), log=quiet)
    last = tmp_path / "checkpoints" / "test" / "last.pt"
    before = last.read_bytes()
    monkeypatch.setattr("dcgan.files.os.fsync", failing_fsync(number))
    with pytest.raises(WriteError) as error:
        train(small_config(epochs=2, resume=True), log=quiet)
    advice = "free some disk space" if number == errno.ENOSPC else f"make {last.parent} writable, or write elsewhere"
    assert str(error.value) == (f"cannot write {last} "
                                f"({os.strerror(number)}): the file there before is left intact; {advice}; then "
                                f"continue the run with --resume (from {last}, step 4)")
    assert last.read_bytes() == before and load_checkpoint(last)["epoch"] == 1
    assert not list(last.parent.glob(".*.tmp"))
    monkeypatch.undo()
    assert train(small_config(epochs=2, resume=True), log=quiet).epoch == 2  # space freed: the run goes on


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_checkpoint_folder(small_config, tmp_path):
    train(small_config(epochs=1), log=quiet)
    folder = tmp_path / "checkpoints" / "test"
    before = (folder / "last.pt").read_bytes()
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="Permission denied"):
            train(small_config(epochs=2, resume=True), log=quiet)
    finally:
        folder.chmod(0o755)
    assert (folder / "last.pt").read_bytes() == before


def poison(network_name):
    def action(state):
        with torch.no_grad():
            next(getattr(state.nets, network_name).parameters()).fill_(float("nan"))
    return action


def test_non_finite_losses_stop_the_run_naming_the_step_and_keep_the_good_checkpoint(small_config, tmp_path):
    last = tmp_path / "checkpoints" / "test" / "last.pt"
    with pytest.raises(TrainingStopped) as stop:
        train(small_config(epochs=3, log_every=3), callbacks=[AtStep(5, poison("generator"))], log=quiet)
    assert stop.value.exit_code == 1
    assert str(stop.value).startswith(f"losses became non-finite (NaN or infinity) at step 6: training stopped; "
                                      f"the last good checkpoint, {last} (step 4), is kept")
    saved = load_checkpoint(last)
    assert saved["step"] == 4 and all(torch.isfinite(t).all() for t in saved["generator"].values())
    assert not (tmp_path / "checkpoints" / "test" / "epoch_002.pt").exists()


def test_divergence_before_any_checkpoint_says_so_and_points_to_a_fresh_start(small_config, tmp_path):
    with pytest.raises(TrainingStopped) as stop:
        train(small_config(epochs=3, log_every=2), callbacks=[AtStep(1, poison("generator"))], log=quiet)
    message = str(stop.value)
    assert message.startswith("losses became non-finite (NaN or infinity) at step 2: training stopped; no checkpoint "
                              "had been written yet.")
    assert message.endswith("then start the run again") and "--resume" not in message
    assert not list((tmp_path / "checkpoints" / "test").glob("*.pt"))


def test_non_finite_weights_never_replace_a_good_checkpoint(small_config, tmp_path):
    # D's weights turn NaN after the epoch's last step was measured: its metrics were finite, its weights are not
    with pytest.raises(TrainingStopped, match=r"weights became non-finite .* at step 8: .*last.pt \(step 4\), is kept"):
        train(small_config(epochs=2, log_every=100), callbacks=[AtStep(8, poison("discriminator"))], log=quiet)
    assert load_checkpoint(tmp_path / "checkpoints" / "test" / "last.pt")["step"] == 4


def test_a_diverging_run_on_the_command_line_stops_with_one_line(tmp_path):
    result = dcgan("train", *tiny_run_flags(tmp_path, "diverges"), "--lr", 1e30, "--log-every", 2, "--epochs", 3)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("losses became non-finite (NaN or infinity) at step ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_sigterm_from_outside_stops_the_command_line_run_cleanly_and_resume_continues(tmp_path):
    flags = [*tiny_run_flags(tmp_path, "term"), "--limit", 256, "--epochs", 500]  # runs long enough to be stopped
    child = subprocess.Popen([sys.executable, "-m", "dcgan", "train", *map(str, flags)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("epoch 1/500"):
            child.send_signal(signal.SIGTERM)
            break
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert stderr.startswith("stopped by SIGTERM at ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    saved = load_checkpoint(tmp_path / "checkpoints" / "term" / "last.pt")
    assert f"step {saved['step']}" in stderr and saved["step"] >= 8
    resumed = dcgan("train", *flags[:-1], saved["epoch"] + 2, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"at epoch {saved['epoch']}, step {saved['step']}" in resumed.stdout
