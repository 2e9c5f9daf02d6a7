"""TensorBoard logs, read back from the event files: the curves match the run's history, the grids its PNGs, and
a resume continues them without repeated or rewound steps, even after a process that died past its checkpoint."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

from dcgan import train
from dcgan.cli import main
from dcgan.training.history import history_figure
from tests.helpers import quiet


def read_events(folder: Path) -> EventAccumulator:
    """What TensorBoard shows of a run folder (every point kept, orphaned points purged as TensorBoard does)."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def raw_steps(folder: Path, tag: str) -> list[int]:
    """Every step written for `tag`, in every event file, before TensorBoard purges anything."""
    return [event.step for path in sorted(folder.glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(path)).Load()
            for value in event.summary.value if value.tag == tag]


class DieAtStep:
    """Kills the run at the end of a step, before the next checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            raise RuntimeError("killed")


def test_curves_grids_and_config_match_the_run_and_go_on_across_a_resume_after_a_crash(small_config):
    cfg = small_config(tensorboard=True, epochs=2)  # 4 steps an epoch, a log row every 2 steps
    train(cfg, log=quiet)
    # A continuation dies in epoch 4 after logging steps 10 and 12: last.pt holds step 12, epoch_002.pt step 8.
    with pytest.raises(RuntimeError, match="killed"):
        train(dataclasses.replace(cfg, epochs=4, resume=True), callbacks=[DieAtStep(13)], log=quiet)
    epoch_2 = str(small_config().checkpoints_dir) + "/test/epoch_002.pt"
    state = train(dataclasses.replace(cfg, epochs=4, resume=True, checkpoint=epoch_2), log=quiet)
    folder = state.paths.checkpoints / "tb"
    assert raw_steps(folder, "loss/D").count(12) == 2  # the dead process's points are on disk...
    events = read_events(folder)
    rows = [row for row in state.history if row["kind"] == "step"]
    for column, tag in (("loss_D", "loss/D"), ("loss_G", "loss/G"), ("D_x", "D/real D(x)"),
                        ("D_G_z", "D/fake D(G(z))"), ("images_per_s", "speed/images_per_s")):
        points = events.Scalars(tag)  # ...but TensorBoard shows each step once, with the resumed run's value
        assert [point.step for point in points] == [row["step"] for row in rows] == list(range(2, 17, 2))
        assert [point.value for point in points] == pytest.approx([row[column] for row in rows], rel=1e-6)
    grids = events.Images("samples/fixed_noise")
    assert [grid.step for grid in grids] == [0, 4, 8, 12, 16]  # before training, then every epoch's end
    for epoch, grid in enumerate(grids):
        shown = np.asarray(Image.open(io.BytesIO(grid.encoded_image_string)).convert("RGB"))
        assert np.array_equal(shown, np.asarray(Image.open(state.paths.sample_grid(epoch)).convert("RGB")))
    (text,) = events.Tensors("config/text_summary")  # the settings the run started with
    assert text.step == 0 and "| epochs | 2 |" in text.tensor_proto.string_val[0].decode()
    settings = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info.hparams
    assert settings["lr"].number_value == pytest.approx(2e-4) and settings["loss"].string_value == "bce"
    assert "checkpoints_dir" not in settings  # the run's settings, not the machine's folders


def test_fid_is_logged_at_its_epoch(tiny_classifier, small_config):
    _, _, _, root = tiny_classifier
    cfg = small_config(data="fashion-mnist", nz=100, ngf=16, ndf=16, limit=320, epochs=2, eval_every=2, eval_n=100,
                       data_dir=str(root / "data"), checkpoints_dir=str(root / "checkpoints"), run="tb-fid",
                       tensorboard=True, eval_metrics="fid,kid,precision,recall,inception_score")
    state = train(cfg, log=quiet)
    events = read_events(state.paths.checkpoints / "tb")
    points = events.Scalars("eval/FID")
    assert [(point.step, point.value) for point in points] == [
        (row["step"], pytest.approx(row["fid"], rel=1e-6)) for row in state.history if "fid" in row]
    assert len(points) == 1 and points[0].step == state.step
    # every value of every chosen metric: in the epoch's row, in TensorBoard, in losses.png's panels
    evaluated = state.history[-1]
    names = ("fid", "kid_mean", "kid_std", "precision", "recall", "inception_score", "inception_score_std")
    assert all(name in evaluated for name in names)
    for tag, name in (("eval/KID", "kid_mean"), ("eval/precision", "precision"),
                      ("eval/inception_score", "inception_score")):
        assert [point.value for point in events.Scalars(tag)] == [pytest.approx(evaluated[name], rel=1e-6)]
    titles = [axes.get_title() for axes in history_figure(state.history, loss=cfg.loss).axes]
    assert titles[:2] == ["Losses", "Discriminator outputs"] and titles[2].startswith("FID")
    assert {"KID", "precision and recall", "inception_score"} <= set(titles)


def test_the_command_line_writes_under_logdir_and_refuses_what_cannot_work(tmp_path, capsys, monkeypatch):
    common = ["train", "--data", "synthetic", "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16",
              "--batch-size", "32", "--limit", "64", "--epochs", "1", "--log-every", "1", "--run", "cli",
              "--no-progress", "--device", "cpu", "--data-dir", str(tmp_path / "data"),
              "--samples-dir", str(tmp_path / "samples"),
              "--checkpoints-dir", str(tmp_path / "checkpoints")]
    assert main([*common, "--logdir", str(tmp_path / "logs")]) == 2
    assert "--logdir applies to --tensorboard runs only" in capsys.readouterr().err
    import dcgan.training.tensorboard as tensorboard

    monkeypatch.setattr(tensorboard.importlib.util, "find_spec", lambda name: None)
    assert main([*common, "--tensorboard"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'pip install -e ".[tensorboard]"' in error and "Traceback" not in error
    assert not (tmp_path / "checkpoints" / "cli").exists()  # refused before anything was written
    monkeypatch.undo()
    assert main([*common, "--tensorboard", "--logdir", str(tmp_path / "logs")]) == 0
    events = read_events(tmp_path / "logs" / "cli")
    assert [point.step for point in events.Scalars("loss/D")] == [1, 2]
    assert not (tmp_path / "checkpoints" / "cli" / "tb").exists()
