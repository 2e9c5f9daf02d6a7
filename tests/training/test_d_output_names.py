"""D's mean outputs are named for what they are under each loss: D(x) and D(G(z)), probabilities of "real", under
bce; scores under the others, in the log line, the progress bar, the figure and TensorBoard. history.csv keeps its
columns D_x and D_G_z whatever the loss."""

import pytest

from dcgan import train
from dcgan.models.losses import DOutputs, Loss
from dcgan.registry import LOSSES
from dcgan.training.history import history_figure, history_row, read_history_csv, shown, statistic

PROBABILITIES = {"bce", "r1"}  # the built-in losses whose D outputs logits of "real"


@pytest.mark.parametrize("name", LOSSES.names)
def test_every_loss_says_what_d_outputs(name):
    outputs = LOSSES.spec(name).d_outputs()
    assert isinstance(outputs, DOutputs) and outputs.probability == (name in PROBABILITIES)
    if outputs.probability:
        assert (outputs.real, outputs.fake) == ("D(x)", "D(G(z))") and "probability of 'real'" in outputs.axis
    else:
        assert "score" in outputs.real and "score" in outputs.fake and "score" in outputs.axis
        assert "probability" not in outputs.axis


def test_lsgan_and_hinge_say_what_kind_of_score():
    assert "targets" in LOSSES.spec("lsgan").d_outputs().axis
    assert "raw score" in LOSSES.spec("hinge").d_outputs().axis


def test_a_loss_of_ones_own_follows_its_probabilities_fact():
    class Mine(Loss):
        probabilities = True

    assert Mine().d_outputs().real == "D(x)" and Loss().d_outputs().real == "D(x) score"


def test_the_log_values_and_tags_follow_the_loss():
    values = {"loss_D": 0.5, "D_x": 1.96, "D_G_z": -1.2}
    assert list(shown(values, LOSSES.spec("bce"))) == ["loss_D", "D(x)", "D(G(z))"]
    assert list(shown(values, LOSSES.spec("hinge"))) == ["loss_D", "D(x) score", "D(G(z)) score"]
    assert statistic("D_x", LOSSES.spec("bce")).tag == "D/real D(x)"
    assert statistic("D_G_z", LOSSES.spec("wgan-gp")).tag == "D/fake D(G(z)) score"


@pytest.mark.parametrize(("loss", "axis", "legend"), [("bce", "mean probability of 'real'", "D(x)"),
                                                      ("hinge", "mean raw score (unbounded)", "D(x) score")])
def test_the_figure_labels_follow_the_loss(loss, axis, legend):
    names = ("loss_D", "loss_G", "D_x", "D_G_z")
    history = [history_row("step", 1, s, dict(zip(names, [1.0, 1.0, 0.6, 0.4])), 1.0, 128) for s in range(1, 5)]
    outputs = history_figure(history, loss=loss).axes[1]
    assert outputs.get_ylabel() == axis
    assert [text.get_text() for text in outputs.get_legend().get_texts()][0] == legend


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_the_epoch_line_names_d_outputs_as_the_loss_does_and_the_csv_keeps_its_columns(small_config, loss):
    lines = []
    state = train(small_config(loss=loss, epochs=1), log=lines.append)
    [epoch_line] = [line for line in lines if line.startswith("epoch 1/1:")]
    if loss == "bce":
        assert " D(x) " in epoch_line and "score" not in epoch_line
    else:
        assert " D(x) score " in epoch_line and " D(G(z)) score " in epoch_line
    rows = read_history_csv(state.paths.history_csv)
    assert {"D_x", "D_G_z"} <= set(rows[-1])
