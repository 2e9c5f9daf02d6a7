"""A statistic reported by name from a loss or a network appears in every place a run shows its numbers, with no
other edit: the progress bar, the epoch line (CLI and notebook), history.csv, TensorBoard and losses.png; and a
run resumes across a change in the statistics reported, either way."""

import dataclasses

import pytest
import torch

from dcgan import UserError, report, train
from dcgan.models.statistics import reporting
from dcgan.training import loop
from dcgan.training.history import RunningMeans, history_figure, read_history_csv
from tests.helpers import quiet
from tests.training import custom_parts


class RecordingBar:
    """Stands in for the epoch's progress bar: notes every postfix the loop shows."""

    postfixes: list[dict] = []

    def __init__(self, iterable, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, values):
        RecordingBar.postfixes.append(dict(values))

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def test_a_statistic_of_the_loss_and_one_of_d_show_everywhere(small_config, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dcgan.pictures.notebook import ShowEpochGrids

    RecordingBar.postfixes = []
    monkeypatch.setattr(loop, "progress_bar", RecordingBar)
    lines, shown, said = [], [], []
    state = train(small_config(epochs=1, tensorboard=True), callbacks=[ShowEpochGrids(shown.append, said.append)],
                  log=lines.append, **custom_parts.parts())
    for name in ("logit_gap", "d_activation"):
        assert all(name in postfix for postfix in RecordingBar.postfixes) and RecordingBar.postfixes  # the bar
        assert [line for line in lines if line.startswith("epoch 1/1:") and f" {name} " in line]  # the epoch line
        assert all(name in row for row in read_history_csv(state.paths.history_csv) if row["kind"] != "graph_check")
    events = EventAccumulator(str(state.paths.checkpoints / "tb"))
    events.Reload()
    assert {"statistics/logit_gap", "statistics/d_activation"} <= set(events.Tags()["scalars"])
    steps = [row for row in state.history if row["kind"] == "step"]
    logged = [event.value for event in events.Scalars("statistics/logit_gap")]
    assert logged == pytest.approx([row["logit_gap"] for row in steps])
    titles = [axes.get_title() for axes in history_figure(state.history, loss=state.setup.loss).axes]
    assert {"logit_gap", "d_activation"} <= set(titles)
    assert state.paths.losses_plot.stat().st_size > 0
    assert len(shown) == 2 and said == ["before training (epoch 0):"]  # the notebook: the log's line, then the grid


def test_d_s_statistic_is_the_mean_of_its_reports_in_a_step():
    """D is called on real images, on generated ones and again in G's update: a value it reports each time is
    averaged over the calls of the step."""
    with reporting(torch.device("cpu")) as reported:
        for value in (1.0, 2.0, 6.0):
            report("d_activation", torch.tensor([value, value]))
        report("count", 4)
    assert reported.statistics()["d_activation"].item() == 3.0 and reported.statistics()["count"].item() == 4.0
    report("outside", 1.0)  # outside a step: nothing to collect, nothing raised
    with pytest.raises(UserError, match="a statistic's name is a letter then letters, digits or _"):
        report("loss D", 1.0)
    with pytest.raises(UserError, match="takes a tensor or a number, not str"):
        with reporting(torch.device("cpu")):
            report("text", "high")


def test_running_means_count_each_name_over_the_steps_that_reported_it():
    means = RunningMeans(torch.device("cpu"))
    means.add(("loss_D", "loss_G"), torch.tensor([1.0, 2.0]))
    means.add(("loss_D", "loss_G", "only_g"), torch.tensor([3.0, 4.0, 10.0]))  # a name appears
    means.add(("loss_D",), torch.tensor([5.0]))  # fewer names this step
    means.add(("only_g", "loss_D"), torch.tensor([20.0, 7.0]))  # another order
    values, _, steps = means.pop()
    assert steps == 4 and values == {"loss_D": 4.0, "loss_G": 3.0, "only_g": 15.0}
    means.add(("loss_D",), torch.tensor([1.0]))
    assert means.pop()[0] == {"loss_D": 1.0}  # a name no step of the window reported has no mean
    with pytest.raises(UserError, match="reported as 'step', a column every history row has"):
        means.add(("step",), torch.tensor([1.0]))


def test_running_means_saved_without_a_name_or_with_one_more_restore_and_go_on():
    old = {"sums": torch.tensor([2.0, 4.0, 1.0, 0.5]), "count": 2, "seconds": 1.0}  # an older checkpoint: no names
    means = RunningMeans(torch.device("cpu"))
    means.restore(old)
    means.add(("loss_D", "loss_G", "D_x", "D_G_z", "new"), torch.tensor([4.0, 2.0, 1.0, 0.5, 9.0]))
    assert means.pop()[0] == {"loss_D": 2.0, "loss_G": 2.0, "D_x": 2 / 3, "D_G_z": 1 / 3, "new": 9.0}
    saved = RunningMeans(torch.device("cpu"))
    saved.add(("loss_D", "gone"), torch.tensor([1.0, 3.0]))
    again = RunningMeans(torch.device("cpu"))
    again.restore(saved.saved())
    again.add(("loss_D",), torch.tensor([3.0]))
    assert again.pop()[0] == {"loss_D": 2.0, "gone": 3.0}


@pytest.mark.parametrize("before, after", [((), ("extra",)), (("extra",), ())], ids=["added", "dropped"])
def test_a_run_resumes_mid_epoch_across_a_statistic_added_or_dropped(small_config, monkeypatch, before, after):
    """A checkpoint written mid-epoch (its running means hold names) by a version that reported `before`, resumed by
    one that reports `after`: the run goes on, and each row holds the names its steps reported."""
    bce = type(custom_parts.HalfBCE())  # a loss to which a statistic is added or from which one is dropped

    def with_statistics(names):
        def d_loss(self, real, fake, real_label, fake_label):
            for name in names:
                report(name, real.mean())
            return bce.d_loss(self, real, fake, real_label, fake_label)
        return type("Loss", (bce,), {"d_loss": d_loss, "__module__": bce.__module__, "__qualname__": "HalfBCE"})

    options = dict(epochs=2, log_every=3, checkpoint_every_steps=2)
    stop = RecordingStop(at=6)
    with pytest.raises(loop.TrainingStopped):
        train(small_config(**options), callbacks=[stop], log=quiet,
              **{**custom_parts.parts(), "loss": with_statistics(before)()})
    resumed = train(small_config(resume=True, **options), log=quiet,
                    **{**custom_parts.parts(), "loss": with_statistics(after)()})
    assert resumed.step == 8
    last = resumed.history[-1]
    assert last["kind"] == "epoch" and all(name in last for name in (*before, *after, "loss_D", "logit_gap"))


@dataclasses.dataclass
class RecordingStop:
    """Stops the run as SIGINT would once `at` steps are done (the loop saves last.pt there)."""

    at: int

    def on_step_end(self, state):
        if state.step == self.at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGINT)
