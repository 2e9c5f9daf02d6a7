"""Messages in the caller's words: the package's own messages, raised for real, read in a notebook's parameters
(`resume = True`) and keep their flags on the command line."""

import dataclasses
import re

import pytest

import dcgan
from dcgan import TrainConfig, UserError, train
from dcgan.errors import TrainingStopped
from dcgan.pictures.messages import in_parameter_words, show_one_line
from dcgan.progress import in_notebook
from tests.helpers import tiny_config


def raised(call) -> BaseException:
    with pytest.raises((UserError, TrainingStopped)) as caught:
        call()
    return caught.value


def test_a_rerun_names_the_parameters_resume_and_overwrite(tmp_path):
    train(tiny_config(tmp_path, epochs=1))
    error = raised(lambda: train(tiny_config(tmp_path, epochs=1)))
    assert "--resume" in str(error) and "--overwrite" in str(error) and "--run" in str(error)  # the CLI's words
    spoken = in_parameter_words(str(error))
    assert "set resume = True to continue it, overwrite = True to start it again, or choose another run name" in spoken
    assert "--" not in spoken and str(tmp_path) in spoken  # flags gone, the folder as it was


@pytest.mark.parametrize("settings, words", [
    ({"lr": -1.0}, "lr must be 0 or more, got -1.0"),
    ({"ema_rampup": 2.0}, "ema_rampup must be at most 1"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"logdir": "/tmp/x"}, "logdir applies to tensorboard = True runs only: set tensorboard = True or drop logdir"),
    ({"classes": 3}, "classes applies to conditional = True runs only: drop it or set conditional = True"),
])
def test_setting_mistakes_name_the_parameter(settings, words):
    error = raised(lambda: TrainConfig(**settings).validate())
    spoken = in_parameter_words(str(error))
    assert words in spoken and not re.search(r"(?<![\w-])--[a-z]", spoken), spoken


def test_values_become_assignments_only_where_they_are_values():
    said = in_parameter_words("Lower --lr, or try --precision fp32, --loss hinge or --spectral-norm; "
                              "--no-tensorboard; lower --batch-size 64; --batch-size to 32; choose another --run name")
    assert said == ('Lower lr, or try precision = "fp32", loss = "hinge" or spectral_norm = True; '
                    "tensorboard = False; lower batch_size = 64; batch_size to 32; choose another run name")
    # a path or a word that merely contains two dashes, and a flag of no setting, are left alone
    assert in_parameter_words("/data/my--run/x --nproc_per_node --not-a-setting") == \
        "/data/my--run/x --nproc_per_node --not-a-setting"


def test_every_setting_has_its_parameter_word():
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        expected = f"{spec.name} = True" if isinstance(spec.default, bool) else spec.name
        assert in_parameter_words(f"see {flag}") == f"see {expected}"


def test_a_stop_by_sigint_reads_as_the_interrupt_button():
    assert in_parameter_words("stopped by SIGINT at epoch 2: saved /r/last.pt; continue with --resume") == \
        "stopped by the interrupt (■) at epoch 2: saved /r/last.pt; continue with resume = True"
    assert in_parameter_words("stopped by SIGINT while the run was starting: the run's files are as they were; run "
                              "the command again") == ("stopped by the interrupt (■) while the run was starting: the "
                                                       "run's files are as they were; run the cell again")


class Shell:
    """Stands in for IPython's shell: keeps what it is asked to show as a cell's error."""

    def __init__(self):
        self.custom, self.shown = None, []

    def set_custom_exc(self, kinds, handler):
        self.custom = (kinds, handler)

    def _showtraceback(self, kind, error, lines):
        self.shown.append(lines)


def test_load_ext_shows_the_packages_errors_as_one_line_in_parameter_words():
    shell = Shell()
    dcgan.load_ipython_extension(shell)  # %load_ext dcgan
    kinds, handler = shell.custom
    assert kinds == (UserError, TrainingStopped)
    handler(shell, UserError, UserError("run 'x' already has checkpoints: pass --resume to continue it"), None)
    handler(shell, TrainingStopped, TrainingStopped("stopped by SIGTERM at epoch 1: saved /r/last.pt; continue "
                                                    "with --resume", 143), None)
    assert shell.shown == [["\x1b[0;31merror: run 'x' already has checkpoints: set resume = True to continue it"
                            "\x1b[0m"],
                           ["\x1b[0;31mstopped: stopped by SIGTERM at epoch 1: saved /r/last.pt; continue with "
                            "resume = True\x1b[0m"]]


def test_a_shell_that_cannot_send_an_error_gets_the_line_on_stderr(capsys):
    show_one_line(object(), UserError, UserError("lower --batch-size"), None)
    assert capsys.readouterr().err == "error: lower batch_size\n"


def test_outside_a_kernel_nothing_speaks_as_a_notebook():
    assert not in_notebook()
