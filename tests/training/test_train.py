"""The training loop on small synthetic data: artifacts, callbacks, resume, and refusals."""

import dataclasses
import json
import math

import pytest
import torch

from dcgan import TrainConfig, train
from dcgan.errors import UserError
from dcgan.models.checkpoint import load_checkpoint
from dcgan.training.history import read_history_csv
from tests.helpers import assert_same_training_state, quiet, without_timing


def test_a_run_writes_every_artifact(small_config, tmp_path):
    state = train(small_config(epochs=2), log=quiet)
    samples, checkpoints = tmp_path / "samples" / "test", tmp_path / "checkpoints" / "test"
    assert sorted(p.name for p in samples.iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png",
                                                          "losses.png", "progress.gif", "real.png"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["config.json", "epoch_001.pt", "epoch_002.pt",
                                                              "history.csv", "last.pt"]
    config = json.loads((checkpoints / "config.json").read_text())
    assert config["channels"] == 3 and config["run"] == "test" and config["image_size"] == 32
    # the header is the union of the rows' names: the step's statistics, no fid without --eval-every, no check
    # or difference without CUDA graphs' self-check
    plain = ["kind", "epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "seconds", "images_per_s"]
    assert (checkpoints / "history.csv").read_text().splitlines()[0] == ",".join(plain)
    rows = read_history_csv(checkpoints / "history.csv")
    assert list(rows[0]) == plain
    steps_per_epoch = 128 // 32
    assert [r["step"] for r in rows if r["kind"] == "epoch"] == [steps_per_epoch, 2 * steps_per_epoch]
    assert [r["step"] for r in rows if r["kind"] == "step"] == [2, 4, 6, 8]
    for row in rows:
        assert all(math.isfinite(row[key]) for key in ("loss_D", "loss_G", "D_x", "D_G_z", "seconds", "images_per_s"))
        assert 0 <= row["D_x"] <= 1 and 0 <= row["D_G_z"] <= 1 and row["images_per_s"] > 0
    last = load_checkpoint(checkpoints / "last.pt")
    assert last["epoch"] == 2 and last["step"] == 8 and last["fixed_noise"].shape == (10, 16)
    assert len(last["history"]) == len(rows)
    assert (checkpoints / "epoch_002.pt").read_bytes() == (checkpoints / "last.pt").read_bytes()
    assert state.epoch == 2 and state.sample_path == samples / "epoch_002.png"


def test_the_fixed_noise_grid_changes_as_g_learns_but_the_noise_does_not(small_config, tmp_path):
    train(small_config(epochs=2), log=quiet)
    ckpts = tmp_path / "checkpoints" / "test"
    first, second = load_checkpoint(ckpts / "epoch_001.pt"), load_checkpoint(ckpts / "epoch_002.pt")
    assert torch.equal(first["fixed_noise"], second["fixed_noise"])
    samples = tmp_path / "samples" / "test"
    assert (samples / "epoch_001.png").read_bytes() != (samples / "epoch_002.png").read_bytes()


def test_callbacks_see_every_step_log_and_epoch(small_config):
    events = []

    class Recorder:
        def on_train_start(self, state):
            events.append(("start", state.step))

        def on_step_end(self, state):
            events.append(("step", state.step))

        def on_log(self, state):
            events.append(("log", state.last_row["step"]))

        def on_epoch_end(self, state):
            assert state.sample_path.is_file() and state.paths.epoch_checkpoint(state.epoch).is_file()
            events.append(("epoch", state.epoch))

        def on_train_end(self, state):
            events.append(("end", state.epoch))

    train(small_config(epochs=2, log_every=3), callbacks=[Recorder()], log=quiet)
    assert events[0] == ("start", 0) and events[-1] == ("end", 2)
    assert [e for e in events if e[0] == "step"] == [("step", s) for s in range(1, 9)]
    assert [e for e in events if e[0] == "log"] == [("log", 3), ("log", 6)]
    assert events.index(("epoch", 1)) == events.index(("step", 4)) + 1


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(small_config):
    options = dict(flip=True, real_label=0.9, fake_label=0.1)
    straight = train(small_config(run="straight", epochs=3, **options), log=quiet)
    train(small_config(run="split", epochs=1, **options), log=quiet)
    resumed = train(small_config(run="split", epochs=3, resume=True, **options), log=quiet)
    assert resumed.step == straight.step == 12
    assert_same_training_state(straight, resumed)
    assert without_timing(resumed.history) == without_timing(straight.history)


def test_resume_from_a_chosen_epoch_checkpoint(small_config, tmp_path):
    first = train(small_config(run="a", epochs=2), log=quiet)
    again = train(small_config(run="b", epochs=2, resume=True,
                               checkpoint=str(tmp_path / "checkpoints" / "a" / "epoch_001.pt")), log=quiet)
    assert_same_training_state(first, again)


def test_a_different_seed_gives_a_different_run(small_config):
    one = train(small_config(run="one", epochs=1), log=quiet)
    two = train(small_config(run="two", epochs=1, seed=1), log=quiet)
    assert not torch.equal(one.nets.generator.net[0].weight, two.nets.generator.net[0].weight)


def test_keep_last_prunes_old_epoch_checkpoints(small_config, tmp_path):
    train(small_config(epochs=4, keep_last=2, limit=64), log=quiet)
    names = sorted(p.name for p in (tmp_path / "checkpoints" / "test").glob("*.pt"))
    assert names == ["epoch_003.pt", "epoch_004.pt", "last.pt"]


def test_a_new_run_never_replaces_an_existing_one_unless_asked(small_config, tmp_path):
    train(small_config(epochs=1), log=quiet)
    with pytest.raises(UserError, match="already has checkpoints .* --resume .* --overwrite"):
        train(small_config(epochs=1), log=quiet)
    with pytest.raises(UserError, match="not found"):  # --overwrite with data that fails to load...
        train(small_config(epochs=1, overwrite=True, data=str(tmp_path / "missing")), log=quiet)
    assert (tmp_path / "checkpoints" / "test" / "last.pt").is_file()  # ...deletes nothing
    train(small_config(epochs=1, overwrite=True, seed=5), log=quiet)
    assert load_checkpoint(tmp_path / "checkpoints" / "test" / "last.pt")["config"]["seed"] == 5


def test_resume_refusals(small_config):
    with pytest.raises(UserError, match="no checkpoint at"):
        train(small_config(resume=True), log=quiet)
    train(small_config(epochs=1), log=quiet)
    with pytest.raises(UserError, match="image_size=32 but this run asks for image_size=96"):
        train(small_config(resume=True, image_size=96), log=quiet)
    with pytest.raises(UserError, match="already holds 1 epochs: pass --epochs above 1"):
        train(small_config(resume=True, epochs=1), log=quiet)


def test_fewer_images_than_a_batch_is_refused(small_config):
    with pytest.raises(UserError, match="fewer than one batch"):
        train(small_config(limit=10), log=quiet)


@pytest.mark.parametrize("size", [64, 96])
def test_larger_sizes_train(small_config, size):
    state = train(small_config(image_size=size, epochs=1, limit=64), log=quiet)
    assert state.nets.generator(torch.randn(2, 16)).shape == (2, 3, size, size)


def test_python_resumes_like_the_cli_with_the_run_s_own_settings(small_config, tmp_path):
    train(small_config(epochs=1, loss="hinge", flip=True, ngf=12), log=quiet)
    folders = {name: str(tmp_path / name) for name in ("data", "samples", "checkpoints")}
    request = TrainConfig(run="test", resume=True, epochs=2, device="cpu", progress=False,
                          **{f"{name}_dir": folder for name, folder in folders.items()})
    resumed = train(request, log=quiet)  # everything left at its default comes from the checkpoint
    assert (resumed.cfg.data, resumed.cfg.loss, resumed.cfg.flip, resumed.cfg.ngf) == ("synthetic", "hinge", True, 12)
    assert resumed.epoch == 2 and resumed.cfg.epochs == 2
    # the CLI names the settings it was given: one given at its default is taken as given
    again = train(dataclasses.replace(request, epochs=3, flip=False), log=quiet, flags={"epochs", "flip"})
    assert again.cfg.flip is False and again.cfg.loss == "hinge" and again.epoch == 3


def test_over_saved_keeps_the_request_s_session_and_given_settings():
    saved = TrainConfig(data="synthetic", ngf=12, device="cuda", compile=True, epochs=5)
    request = TrainConfig(epochs=9, resume=True)
    merged = request.over_saved(saved)
    assert (merged.data, merged.ngf, merged.epochs, merged.resume) == ("synthetic", 12, 9, True)
    assert merged.device == "auto" and merged.compile is False  # how this invocation runs is never inherited
    assert request.over_saved(saved, flags={"ngf"}).ngf == 64 and request.over_saved(saved, flags={"ngf"}).epochs == 5
