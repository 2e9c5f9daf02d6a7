"""Whole-step CUDA graphs and the step runner, on the CPU: the static-buffer step that a graph holds is
replayed here by a stand-in for the capture (a CUDA graph re-runs the same work on the same tensors), so the
bookkeeping around it (static inputs, the EMA share, the two kinds of step with n_critic > 1, the random
streams, resume) is checked against the plain step. The capture itself needs a GPU: benchmarks/gpu_check.py."""

import os
import signal

import pytest
import torch
from test_interruptions import AtStep
from test_train import assert_same_training_state, quiet, without_timing

from dcgan import train
from dcgan.config import TrainConfig
from dcgan.errors import TrainingStopped
from dcgan.models.checkpoint import load_checkpoint, save_checkpoint
from dcgan.training import graphs, speed
from dcgan.training.speed import speed_plan

# every piece of a step a graph must carry: two kinds of step, EMA, DiffAugment, labels, flips, smoothing
EVERYTHING = dict(n_critic=2, ema=0.9, diffaugment="translation,cutout,color", conditional=True, flip=True,
                  real_label=0.9, epochs=4, precision="fp32")


class Rehearsal:
    """Stands in for torch.cuda.graph on the CPU: 'captures' the step body and replays it by calling it again,
    counting replays and checking that every replay reads the same static input tensors."""

    def __init__(self, fail_with: Exception | None = None):
        self.captured, self.replays, self.fail_with = [], 0, fail_with

    def __call__(self, body, generator):
        assert isinstance(generator, torch.Generator)
        if self.fail_with is not None:
            generator.manual_seed(12345)  # a failed capture may leave the stream moved: the runner must undo it
            raise self.fail_with
        self.captured.append(body)

        def replay():
            self.replays += 1
            return body()

        return replay


@pytest.fixture
def rehearsed(monkeypatch):
    """Graphs on for the CPU, captured by a Rehearsal."""
    rehearsal = Rehearsal()
    monkeypatch.setattr(speed, "graphs_unavailable", lambda device, distributed: "")
    monkeypatch.setattr(graphs, "cuda_capture", rehearsal)
    return rehearsal


def test_the_plan_puts_graphs_on_cuda_for_one_process_and_says_why_not_elsewhere():
    cuda = speed_plan(TrainConfig(), torch.device("cuda"))
    assert cuda.cuda_graphs and cuda.describe() == "bf16 autocast, channels-last, fused Adam, CUDA graphs"
    assert not speed_plan(TrainConfig(cuda_graphs="off"), torch.device("cuda")).cuda_graphs
    ddp = speed_plan(TrainConfig(cuda_graphs="on"), torch.device("cuda"), distributed=True)
    assert not ddp.cuda_graphs and ddp.notes == ("no CUDA graphs: DDP's all-reduce runs eager under torchrun",)
    assert speed_plan(TrainConfig(), torch.device("cuda"), distributed=True).notes == ()  # auto: no complaint
    cpu = speed_plan(TrainConfig(cuda_graphs="on"), torch.device("cpu"))
    assert not cpu.cuda_graphs and cpu.describe().endswith("no CUDA graphs: they need a CUDA device")
    compiled = speed_plan(TrainConfig(compile=True), torch.device("cuda"))
    assert not compiled.channels_last and "channels-last off for torch.compile" in compiled.describe()
    assert speed_plan(TrainConfig(compile=True, channels_last="on"), torch.device("cuda")).channels_last
    assert speed_plan(TrainConfig(compile=True), torch.device("cpu")).channels_last  # the CPU compile is fine


def test_graphs_on_the_cpu_are_refused_in_the_first_line_and_the_run_trains_eagerly(small_config):
    lines = []
    train(small_config(epochs=1, cuda_graphs="on"), log=lines.append)
    assert lines[1].startswith("run 'test' on cpu (") and "no CUDA graphs: they need a CUDA device" in lines[1]


def test_the_replayed_step_trains_exactly_the_plain_step(small_config, rehearsed):
    eager = train(small_config(run="eager", cuda_graphs="off", **EVERYTHING), log=quiet)
    lines = []
    graphed = train(small_config(run="graphed", **EVERYTHING), log=lines.append)
    assert "CUDA graphs" in lines[1]
    assert len(rehearsed.captured) == 2  # a D step and a D + G step
    assert rehearsed.replays == graphed.runner.graphed.replayed == graphed.step - graphs.WARMUP_G_STEPS * 2
    assert graphed.runner.graphed.real.is_contiguous(memory_format=torch.channels_last)  # the batch's layout
    assert_same_training_state(eager, graphed)
    for name, value in eager.ema_generator.state_dict().items():
        assert torch.equal(value, graphed.ema_generator.state_dict()[name]), name
    assert torch.equal(eager.noise_rng.get_state(), graphed.noise_rng.get_state())
    assert without_timing(eager.history) == without_timing(graphed.history)


def test_a_graphed_run_stopped_by_sigterm_resumes_into_the_uninterrupted_graphed_run(small_config, rehearsed):
    options = dict(EVERYTHING, epochs=5)
    straight = train(small_config(run="straight", **options), log=quiet)
    with pytest.raises(TrainingStopped) as stop:  # step 10: after capture, mid-epoch
        train(small_config(run="split", **options), callbacks=[AtStep(10, lambda state: os.kill(os.getpid(),
                                                                                              signal.SIGTERM))],
              log=quiet)
    assert stop.value.exit_code == 143
    resumed = train(small_config(run="split", resume=True, **options), log=quiet)
    assert resumed.step == straight.step == 20
    assert_same_training_state(straight, resumed)
    assert without_timing(straight.history) == without_timing(resumed.history)


def test_a_step_that_cannot_be_captured_runs_eagerly_after_one_line(small_config, monkeypatch):
    failing = Rehearsal(fail_with=RuntimeError("operation not permitted when stream is capturing\nmore detail"))
    monkeypatch.setattr(speed, "graphs_unavailable", lambda device, distributed: "")
    monkeypatch.setattr(graphs, "cuda_capture", failing)
    eager = train(small_config(run="eager", cuda_graphs="off", precision="fp32", flip=True), log=quiet)
    lines = []
    fallen_back = train(small_config(run="graphed", precision="fp32", flip=True), log=lines.append)
    notes = [line for line in lines if line.startswith("CUDA graphs off")]
    assert notes == ["CUDA graphs off: capturing the step failed (RuntimeError: operation not permitted when "
                     "stream is capturing); training goes on eagerly"]
    assert_same_training_state(eager, fallen_back)  # the failed capture moved no random stream


class FailingCompile:
    """Stands in for torch.compile: the compiled D raises like inductor's generated code does, on its third
    call, after D's optimizer has already stepped (so the runner must put D back)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, module):
        runner = self

        class Compiled:
            _orig_mod = module

            def __call__(self, *args):
                if isinstance(module, torch.nn.Module) and "Discriminator" in type(module).__name__:
                    runner.calls += 1
                    if runner.calls == 3:
                        raise AssertionError("expected size 512==512, stride 16==1 at dim=1")
                return module(*args)

        return Compiled()


def test_a_compiler_failure_falls_back_to_the_plain_networks_in_one_line(small_config, monkeypatch):
    eager = train(small_config(run="eager", precision="fp32", ema=0.9), log=quiet)
    monkeypatch.setattr(torch, "compile", FailingCompile())
    lines = []
    compiled = train(small_config(run="compiled", precision="fp32", ema=0.9, compile=True), log=lines.append)
    assert [line for line in lines if "torch.compile failed" in line] == [
        "torch.compile failed (AssertionError: expected size 512==512, stride 16==1 at dim=1); training goes on "
        "with the plain networks"]
    assert compiled.g_forward is compiled.generator and not compiled.plan.compile
    assert_same_training_state(eager, compiled)  # the half-done step was undone and redone


def test_a_checkpoint_from_a_graphed_gpu_run_resumes_on_the_cpu(small_config, tmp_path):
    train(small_config(epochs=1), log=quiet)
    last = tmp_path / "checkpoints" / "test" / "last.pt"
    payload = load_checkpoint(last)
    for name in ("optimizer_g", "optimizer_d"):  # what capturable fused Adam on CUDA saves
        for group in payload[name]["param_groups"]:
            group.update(capturable=True, fused=True)
    save_checkpoint(payload, [last])
    resumed = train(small_config(epochs=2, resume=True), log=quiet)
    assert resumed.step == 8
    assert all(not group["capturable"] and not group["fused"] for group in resumed.opt_d.param_groups)
