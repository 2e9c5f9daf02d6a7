"""Whole-step CUDA graphs on the CPU, through a model of what a graph does (replay_model.ReplayModel: the step
recorded once as aten ops and replayed from the tape, Python values frozen, outside tensors mutated in place,
host syncs refused). The model must train exactly what the eager step trains with everything a step carries,
and must fail where a real graph would fail and the older stand-in (Rehearsal, which calls the body again)
cannot. The self-check that guards real graphs on the GPU is tested here with the model;
tests/training/test_cuda_graphs.py captures for real where a GPU is present."""

import dataclasses
import gc
import os
import signal
import warnings

import pytest
import torch

from dcgan import train
from dcgan.config import TrainConfig
from dcgan.errors import TrainingStopped
from dcgan.training import execution, graphs, speed, start, step
from dcgan.training.graphs import Captured
from dcgan.training.speed import speed_plan
from tests.helpers import quiet, without_timing
from tests.training.replay_model import HostSync, ModelledAllocator, ReplayModel
from tests.training.test_interruptions import AtStep

# every piece of a step a graph must carry: two kinds of step, EMA, DiffAugment, labels, flips, smoothing
EVERYTHING = dict(n_critic=2, ema=0.9, diffaugment="translation,cutout,color", conditional=True, flip=True,
                  real_label=0.9, epochs=4, precision="fp32")
VARIANTS = {"everything": EVERYTHING,
            "wgan-gp (double backward)": dict(loss="wgan-gp", n_critic=2, epochs=4, precision="fp32"),
            "resnet D (dropout)": dict(arch="resnet", ema=0.9, epochs=4, precision="fp32")}


class Rehearsal:
    """The older stand-in for torch.cuda.graph: 'captures' the step body and replays it by calling it again. It
    re-reads every Python value and follows replaced tensors, so it cannot fail the way a graph fails."""

    def __init__(self, fail_with: Exception | None = None):
        self.captured, self.replays, self.fail_with = [], 0, fail_with

    def __call__(self, body, generator, pool=None):
        assert isinstance(generator, torch.Generator)
        if self.fail_with is not None:
            generator.manual_seed(12345)  # a failed capture may leave the stream moved: the runner must undo it
            raise self.fail_with
        self.captured.append(body)

        def replay():
            self.replays += 1
            return body()

        return Captured(replay)


def gpu_plan(monkeypatch, capture) -> None:
    """Graphs on for the CPU, captured by `capture`, with the GPU's optimizer: fused Adam (capturable when the
    plan graphs), in the replayed run and in the eager one it is compared with."""
    def plan_of_a_gpu(cfg, device, distributed=False):
        return dataclasses.replace(speed_plan(cfg, device, distributed), fused_adam=True)

    monkeypatch.setattr(speed, "graphs_unavailable", lambda device, distributed: "")
    monkeypatch.setattr(start, "speed_plan", plan_of_a_gpu)
    monkeypatch.setattr(execution, "cuda_capture", capture)


@pytest.fixture
def modelled(monkeypatch):
    model = ReplayModel()
    gpu_plan(monkeypatch, model)
    return model


def differences(eager, graphed) -> list[str]:
    """What a graphed run trained differently from the eager run: weights and buffers (G, D, EMA), optimizer
    states, random streams, history; and 'nothing replayed' when the graphs were dropped."""
    found = []
    for net in ("generator", "discriminator", "ema_generator"):
        if getattr(eager.nets, net) is None:
            continue
        a, b = getattr(eager.nets, net).state_dict(), getattr(graphed.nets, net).state_dict()
        found += [f"{net}.{name}" for name in a if not torch.equal(a[name], b[name])]
    for opt in ("opt_g", "opt_d"):
        a, b = getattr(eager.nets, opt).state_dict()["state"], getattr(graphed.nets, opt).state_dict()["state"]
        found += [f"{opt}.{index}.{key}" for index in a for key in a[index]
                  if not torch.equal(a[index][key].cpu(), b[index][key].cpu())]
    if not torch.equal(eager.progress.noise_rng.get_state(), graphed.progress.noise_rng.get_state()):
        found.append("noise generator")
    if without_timing(eager.history) != without_timing(graphed.history):
        found.append("history")
    if graphed.runner.graphed is None or graphed.runner.graphed.off or not graphed.runner.graphed.replayed:
        found.append("nothing replayed")
    return found


def eager_and_graphed(small_config, **options):
    eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
    lines = []
    graphed = train(small_config(run="graphed", **options), log=lines.append)
    return eager, graphed, lines


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


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_modelled_graph_trains_exactly_what_the_eager_step_trains(small_config, modelled, variant):
    eager, graphed, lines = eager_and_graphed(small_config, **VARIANTS[variant])
    assert "CUDA graphs" in lines[1] and not any(line.startswith("CUDA graphs off") for line in lines)
    kinds = 2 if graphed.cfg.n_critic > 1 else 1  # a D step, and a D + G step
    assert len(modelled.tapes) == kinds
    assert modelled.replays == graphed.runner.graphed.replayed == graphed.step - execution.WARMUP_G_STEPS * kinds
    assert graphed.runner.graphed.real.is_contiguous(memory_format=torch.channels_last)  # the batch's layout
    assert all(group["capturable"] and group["fused"] for group in graphed.nets.opt_d.param_groups)
    assert differences(eager, graphed) == []


def test_every_graph_of_a_run_captures_into_one_pool_that_the_run_holds(small_config, monkeypatch):
    pools = []
    allocator = ModelledAllocator()
    model = ReplayModel(allocator)

    def capture(body, generator, pool=None):
        pools.append(pool)
        return model(body, generator, pool)

    gpu_plan(monkeypatch, capture)
    monkeypatch.setattr(execution, "capture_pool", allocator.pool)
    state = train(small_config(**EVERYTHING), log=quiet)
    assert pools == [(0, 1), (0, 1)]  # the D step's graph and the D + G step's, in the run's one pool
    assert allocator.use_counts == {(0, 1): 2} and not allocator.underway
    del state
    gc.collect()
    assert allocator.use_counts == {(0, 1): 0}  # the graphs dropped, the pool is free


def test_a_modelled_graphed_run_stopped_by_sigterm_resumes_into_the_uninterrupted_run(small_config, modelled):
    options = dict(EVERYTHING, epochs=5)
    eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
    straight = train(small_config(run="straight", **options), log=quiet)
    with pytest.raises(TrainingStopped) as stop:  # step 10: after capture, mid-epoch
        train(small_config(run="split", **options), callbacks=[AtStep(10, lambda state: os.kill(os.getpid(),
                                                                                              signal.SIGTERM))],
              log=quiet)
    assert stop.value.exit_code == 143
    resumed = train(small_config(run="split", resume=True, **options), log=quiet)
    assert resumed.step == straight.step == 20 and resumed.runner.graphed.replayed == 20 - 10 - 6
    assert differences(eager, straight) == [] and differences(straight, resumed) == []


# Three ways a step body breaks under a real graph; each trains correctly eagerly and under Rehearsal.

def ema_share_from_a_python_counter(body):
    """The EMA's share computed from the Python step counter, not from Adam's step count on the device: a graph
    keeps the share of the step it was captured at."""
    def broken(state, real, labels=None):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(step, "g_updates", lambda optimizer: torch.tensor((state.step + 1) // state.cfg.n_critic))
            return body(state, real, labels)
    return broken


def ema_weights_replaced(body):
    """The EMA's weights replaced by new tensors (`.data =`) instead of updated in place: a graph goes on writing
    the tensors it was captured with, which the EMA no longer holds."""
    def replacing_move_ema(ema, generator, share):
        with torch.no_grad():
            for average, weight in zip(ema.parameters(), generator.parameters()):
                average.data = torch.lerp(average, weight, share)
            for saved, buffer in zip(ema.buffers(), generator.buffers()):
                saved.copy_(buffer)

    def broken(state, real, labels=None):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(step, "move_ema", replacing_move_ema)
            return body(state, real, labels)
    return broken


def loss_read_on_the_host(body):
    """A loss read back as a Python number every step (a host sync): a capture cannot hold it."""
    def broken(state, real, labels=None):
        values = body(state, real, labels)
        if float(values["loss_D"]) > 1e9:
            raise AssertionError("unreachable")
        return values
    return broken


BREAKAGES = {"a Python step counter": ema_share_from_a_python_counter,
             "a tensor replaced instead of mutated": ema_weights_replaced, "a host sync": loss_read_on_the_host}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_model_fails_a_body_that_a_graph_cannot_replay_and_rehearsal_passes_it(small_config, monkeypatch,
                                                                                    breakage):
    monkeypatch.setattr(execution, "train_step", BREAKAGES[breakage](step.train_step))  # eager, captured, checked
    options = dict(EVERYTHING, epochs=3)
    rehearsal = Rehearsal()
    gpu_plan(monkeypatch, rehearsal)
    eager, rehearsed, _ = eager_and_graphed(small_config, **options)
    assert rehearsal.replays > 0 and differences(eager, rehearsed) == []  # the stand-in sees nothing wrong
    model = ReplayModel()
    monkeypatch.setattr(execution, "cuda_capture", model)
    modelled = train(small_config(run="modelled", **options), log=quiet)
    found = differences(eager, modelled)
    assert found
    if breakage == "a host sync":  # the capture failed: the run fell back to eager steps, and said why
        assert found == ["nothing replayed"] and modelled.runner.graphed.off
    else:
        assert any(name.startswith("ema_generator.") for name in found)


def test_non_capturable_adam_is_a_host_sync_the_model_refuses(small_config, monkeypatch):
    """Adam without capturable=True reads its step count on the host: on CUDA such a capture fails."""
    model = ReplayModel()
    gpu_plan(monkeypatch, model)
    monkeypatch.setattr(start, "adam", lambda parameters, lr, cfg, plan: torch.optim.Adam(parameters, lr=lr))
    lines = []
    state = train(small_config(precision="fp32"), log=lines.append)
    assert state.runner.graphed.off and state.runner.graphed.replayed == 0
    assert [line for line in lines if line.startswith("CUDA graphs off")] == [
        "CUDA graphs off: capturing the step failed (HostSync: aten._local_scalar_dense.default reads a device value "
        "on the host during capture); training goes on eagerly"]


def test_capturable_single_tensor_adam_replays_like_eager_when_recorded_on_the_cpu(small_config, monkeypatch):
    """torch refuses capturable Adam on a CPU outside the fused kernel; let it, here only, to record that path."""
    import torch.optim.adam as torch_adam

    supported = torch_adam._get_capturable_supported_devices
    monkeypatch.setattr(torch_adam, "_get_capturable_supported_devices", lambda *a, **k: [*supported(*a, **k), "cpu"])
    model = ReplayModel()
    gpu_plan(monkeypatch, model)
    single_tensor = start.adam

    def capturable_everywhere(parameters, lr, cfg, plan):  # the same path in the eager run and the graphed one
        return single_tensor(parameters, lr, cfg, dataclasses.replace(plan, fused_adam=False, cuda_graphs=True))

    monkeypatch.setattr(start, "adam", capturable_everywhere)
    eager, graphed, _ = eager_and_graphed(small_config, **dict(EVERYTHING, epochs=3))
    assert not graphed.nets.opt_d.param_groups[0]["fused"] and model.replays > 0
    assert differences(eager, graphed) == []


# A failed capture.

class PoisonedGenerators(torch.utils._python_dispatch.TorchDispatchMode):
    """What torch does to a generator registered with a graph whose capture failed: it stays marked as capturing,
    and its next draw outside a graph raises."""

    def __init__(self):
        super().__init__()
        self.poisoned = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(kwargs.get("generator") is generator for generator in self.poisoned):
            raise RuntimeError("Offset increment outside graph capture encountered unexpectedly.")
        return func(*args, **kwargs)


def test_a_failed_capture_leaves_no_generator_that_raises_and_the_run_trains_eagerly(small_config, monkeypatch):
    poison = PoisonedGenerators()

    class FailingCapture(Rehearsal):
        def __call__(self, body, generator, pool=None):
            poison.poisoned.append(generator)
            super().__call__(body, generator, pool)

    gpu_plan(monkeypatch, FailingCapture(RuntimeError("operation not permitted when stream is capturing\nmore")))
    options = dict(precision="fp32", flip=True, ema=0.9)
    eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
    lines = []
    with poison:
        fallen_back = train(small_config(run="graphed", **options), log=lines.append)
    assert [line for line in lines if line.startswith("CUDA graphs off")] == [
        "CUDA graphs off: capturing the step failed (RuntimeError: operation not permitted when stream is "
        "capturing); training goes on eagerly"]
    assert fallen_back.progress.noise_rng not in poison.poisoned  # a new generator, holding the saved state
    assert differences(eager, fallen_back) == ["nothing replayed"]  # the failed capture moved no random stream


def g_step_read_on_the_host(body):
    """A host sync in the D + G step only: the D step's graph is captured, the second capture fails."""
    def broken(state, real, labels=None):
        values = body(state, real, labels)
        if step.is_g_step(state) and float(values["loss_G"]) > 1e9:
            raise AssertionError("unreachable")
        return values
    return broken


def modelled_allocator(monkeypatch, pool=None) -> ModelledAllocator:
    """Graphs captured by the model into pools of a modelled allocator (`pool(allocator)`: the run's CapturePool)."""
    allocator = ModelledAllocator()
    gpu_plan(monkeypatch, ReplayModel(allocator))
    monkeypatch.setattr(execution, "capture_pool", (lambda device: pool(allocator)) if pool else allocator.pool)
    return allocator


def graphs_off_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("CUDA graphs off")]


def test_a_failed_capture_leaves_the_modelled_allocator_capturing_as_torch_does():
    allocator, generator = ModelledAllocator(), torch.Generator()
    model = ReplayModel(allocator)
    weight = torch.ones(3)

    def syncing():
        return {"loss": (weight * 2).sum().item()}

    with pytest.raises(RuntimeError, match="operation failed due to a previous error during capture") as failed:
        model(syncing, generator, allocator.pool(torch.device("cpu")).handle)
    assert isinstance(failed.value.__context__, HostSync)  # the error that broke it lies beneath
    with pytest.raises(RuntimeError, match="captures_underway.empty"):
        allocator.empty_cache()
    with pytest.raises(RuntimeError, match="captures_underway.empty"):  # and so does every later capture
        model(lambda: {"loss": weight * 2}, generator, allocator.pool(torch.device("cpu")).handle)


def test_a_failed_capture_gives_its_memory_back_names_its_cause_and_a_later_run_captures_again(small_config,
                                                                                               monkeypatch):
    allocator = modelled_allocator(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(execution, "train_step", loss_read_on_the_host(step.train_step))
        lines = []
        failed = train(small_config(run="failed", precision="fp32"), log=lines.append)
    assert graphs_off_lines(lines) == [
        "CUDA graphs off: capturing the step failed (HostSync: aten._local_scalar_dense.default reads a device value "
        "on the host during capture); training goes on eagerly"]  # the cause, not torch's generic error over it
    assert failed.runner.graphed.off and not allocator.underway
    allocator.empty_cache()  # works: the allocator is capturing no more
    assert allocator.use_counts == {(0, 1): 0}  # the failed capture's share of its pool is given back
    lines = []  # the next run in the same process (a notebook's next cell) captures and replays
    again = train(small_config(run="again", precision="fp32"), log=lines.append)
    assert not graphs_off_lines(lines) and again.runner.graphed.replayed > 0 and not again.runner.graphed.off


def test_a_second_capture_that_fails_releases_only_its_own_share_of_the_shared_pool(small_config, monkeypatch):
    allocator = modelled_allocator(monkeypatch)
    monkeypatch.setattr(execution, "train_step", g_step_read_on_the_host(step.train_step))
    lines = []
    state = train(small_config(precision="fp32", n_critic=2, epochs=3), log=lines.append)
    (off,) = graphs_off_lines(lines)
    assert off.startswith("CUDA graphs off: capturing the step failed (HostSync: ") and off.endswith("eagerly")
    assert state.runner.graphed.replayed == 1 and not allocator.underway  # the D step's graph replayed once
    del state
    gc.collect()
    assert allocator.use_counts == {(0, 1): 0}  # the D step's graph, dropped when the graphs went off, released too


def test_where_torch_cannot_give_the_memory_back_the_line_says_to_restart(small_config, monkeypatch):
    """A torch without the private calls (a later version may rename them): nothing is ended or released, the
    allocator stays capturing, and each run says so; the training is the eager one either way."""
    def without_private_calls(allocator):
        pool = allocator.pool(torch.device("cpu"))
        return dataclasses.replace(pool, end_capture=None, release=None)

    allocator = modelled_allocator(monkeypatch, without_private_calls)
    monkeypatch.setattr(execution, "train_step", loss_read_on_the_host(step.train_step))
    for run in ("first", "second"):
        lines = []
        train(small_config(run=run, precision="fp32"), log=lines.append)
        (off,) = graphs_off_lines(lines)
        assert off.endswith("training goes on eagerly" + execution.LEFT_CAPTURING), off
    assert "HostSync" in off or "captures_underway" in off  # the second run failed as its capture began
    assert allocator.underway


@pytest.mark.parametrize("names", [("_cuda_endAllocateToPool",), ("_cuda_endAllocateCurrentStreamToPool",), ()])
def test_the_pool_uses_the_private_calls_of_the_torch_at_hand(monkeypatch, names):
    called = []
    for name in ("_cuda_endAllocateToPool", "_cuda_endAllocateCurrentStreamToPool", "_cuda_releasePool"):
        monkeypatch.delattr(torch._C, name, raising=False)
    for name in (*names, "_cuda_releasePool"):
        monkeypatch.setattr(torch._C, name, lambda device, pool, name=name: called.append((name, device, pool)),
                            raising=False)
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: (0, 7))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: called.append("empty_cache"))
    monkeypatch.setattr(torch._C, "_host_emptyCache", lambda: called.append("host"), raising=False)
    pool = graphs.capture_pool(torch.device("cuda", 1))
    assert pool.handle == (0, 7)
    assert pool.give_back()
    if names:
        assert called == [(names[0], 1, (0, 7)), ("_cuda_releasePool", 1, (0, 7)), "empty_cache", "host"]
    else:
        assert pool.end_capture is None and called == ["empty_cache", "host"]

    def left_capturing():
        raise RuntimeError("captures_underway.empty() INTERNAL ASSERT FAILED")

    monkeypatch.setattr(torch._C, "_host_emptyCache", left_capturing)  # the pinned memory's allocator, say
    assert not graphs.capture_pool(torch.device("cuda", 1)).give_back()


def test_a_pool_whose_capture_had_ended_is_not_released_twice():
    allocator = ModelledAllocator()
    pool = allocator.pool(torch.device("cpu"))
    allocator.begin(pool.handle)
    allocator.end(pool.handle)  # the capture ended: its graph holds the share and releases it when dropped
    assert pool.give_back() and allocator.use_counts == {pool.handle: 1}


class RaisingReplays(ReplayModel):
    """A model whose replay number `at` (from 1) updates the step's tensors, then raises (as a launch may)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def __call__(self, body, generator, pool=None):
        captured = super().__call__(body, generator, pool)

        def replay():
            outputs = captured.replay()
            if self.replays == self.at:
                raise RuntimeError("CUDA error: unspecified launch failure\nCUDA kernel errors might be ...")
            return outputs

        return Captured(replay)


@pytest.mark.parametrize("at", [1, 101])  # the first checked replay, and the one RECHECK_AFTER replays later
def test_a_checked_replay_that_raises_falls_back_in_one_line_from_the_state_before_it(small_config, monkeypatch,
                                                                                     at):
    monkeypatch.setattr(execution, "checks_replays", lambda device: True)
    gpu_plan(monkeypatch, RaisingReplays(at))
    options = dict(precision="fp32", batch_size=8, limit=256, epochs=4)
    lines = []
    graphed = train(small_config(run="graphed", **options), log=lines.append)
    failing_step = at + 3  # after the three warm-up steps
    assert graphs_off_lines(lines) == [
        f"CUDA graphs off: replaying the step failed at step {failing_step} (RuntimeError: CUDA error: unspecified "
        "launch failure); training goes on eagerly"]
    rows = [row for row in graphed.history if row["kind"] == "graph_check"]
    assert [row["check"] for row in rows] == ["match"] * (at > 1) + ["failed"]
    assert graphed.runner.graphed.off and graphed.step == 4 * 32
    if at == 1:  # every step that counted ran eagerly, the failed replay's writes undone
        eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
        graphed.progress.history = [row for row in graphed.history if row["kind"] != "graph_check"]
        assert differences(eager, graphed) == ["nothing replayed"]


# The self-check that guards real graphs on a GPU, run here against the model.

@pytest.fixture
def checked(monkeypatch):
    monkeypatch.setattr(execution, "checks_replays", lambda device: True)


class DivergingModel(ReplayModel):
    """A model whose replays go wrong from replay number `after` on (a bias added to one of D's weights)."""

    def __init__(self, after: int, discriminator_weight):
        super().__init__()
        self.after, self.weight = after, discriminator_weight

    def __call__(self, body, generator, pool=None):
        captured = super().__call__(body, generator, pool)

        def replay():
            outputs = captured.replay()
            if self.replays > self.after:
                with torch.no_grad():
                    self.weight().add_(0.01)
            return outputs

        return Captured(replay)


def test_the_self_check_finds_the_modelled_replays_equal_and_trains_what_eager_trains(small_config, modelled,
                                                                                      checked):
    options = dict(EVERYTHING, batch_size=8, limit=256, epochs=7)  # 32 steps an epoch: each kind checked twice
    eager, graphed, lines = eager_and_graphed(small_config, **options)
    checks = [line for line in lines if line.startswith("CUDA graphs")]
    assert checks == [f"CUDA graphs: replay matches the eager step (largest difference: the step's metrics 0.0e+00; "
                      f"{kind}, step {number})" for number, kind in ((7, "the D step"), (8, "the D + G step"),
                                                                    (207, "the D step"), (208, "the D + G step"))]
    rows = [row for row in graphed.history if row["kind"] == "graph_check"]
    assert [(row["step"], row["check"], row["difference"]) for row in rows] == [(7, "match", 0.0), (8, "match", 0.0),
                                                                               (207, "match", 0.0),
                                                                               (208, "match", 0.0)]
    graphed.progress.history = [row for row in graphed.history if row["kind"] != "graph_check"]  # the only addition
    assert differences(eager, graphed) == []


@pytest.mark.parametrize("after, failing_step", [(0, 4), (50, 104)])
def test_a_replay_that_differs_is_caught_and_training_goes_on_eagerly(small_config, monkeypatch, checked,
                                                                       after, failing_step, tmp_path):
    state_box = {}
    model = DivergingModel(after, lambda: state_box["state"].nets.discriminator.net[0].weight)
    gpu_plan(monkeypatch, model)
    monkeypatch.setattr(start, "write_first_files", keep_state(start.write_first_files, state_box))
    options = dict(precision="fp32", batch_size=8, limit=256, epochs=4)
    lines = []
    graphed = train(small_config(run="graphed", **options), log=lines.append)
    off = [line for line in lines if line.startswith("CUDA graphs off")]
    assert len(off) == 1 and off[0].startswith(f"CUDA graphs off: the replay of the step differs from the eager step "
                                               f"at step {failing_step} (D's update ")
    assert off[0].endswith("); training goes on eagerly")
    rows = [row for row in graphed.history if row["kind"] == "graph_check"]
    assert [row["check"] for row in rows] == ["match"] * (after > 0) + ["differs"]
    assert graphed.runner.graphed.off and graphed.runner.graphed.replayed == failing_step - 3
    csv = (tmp_path / "checkpoints" / "graphed" / "history.csv").read_text()
    # (the header: the step's statistics, then check and difference; no fid column without --eval-every)
    assert f"graph_check,1,{failing_step},,,,,,,differs," in csv or f"graph_check,4,{failing_step}" in csv
    if after == 0:  # checked at the first replay: every step that counted ran eagerly
        eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
        graphed.progress.history = [row for row in graphed.history if row["kind"] != "graph_check"]
        assert differences(eager, graphed) == ["nothing replayed"]


def keep_state(write_first_files, box):
    def wrapped(state, fresh):
        box["state"] = state
        return write_first_files(state, fresh)
    return wrapped


# The rest of the runner.

def test_eager_steps_of_capturable_adam_do_not_warn_the_user(small_config, modelled, monkeypatch):
    """torch warns once per optimizer when a capturable Adam steps outside a graph (the warm-up does)."""
    original = torch.optim.Adam.step

    def step_like_torch(self, *args, **kwargs):
        if self.param_groups[0]["capturable"] and not getattr(self, "_warned", False):
            self._warned = True
            warnings.warn(f"{graphs.CAPTURABLE_WARNING} or some of all the param_groups came with capturable=True, "
                          "but step() is running without CUDA graph capture.", stacklevel=2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_like_torch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(small_config(precision="fp32"), log=quiet)
    assert not [warning for warning in caught if graphs.CAPTURABLE_WARNING in str(warning.message)]


def test_the_compile_guard_ends_before_the_capture(small_config, monkeypatch):
    monkeypatch.setattr(execution, "GUARDED_G_STEPS", execution.WARMUP_G_STEPS)
    with pytest.raises(AssertionError, match="the compile guard must end before the graphs are captured"):
        train(small_config(epochs=1, compile=True), log=quiet)


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


@pytest.mark.parametrize("graphed", [False, True])
def test_a_compiler_failure_falls_back_to_the_plain_networks_in_one_line(small_config, monkeypatch, graphed):
    if graphed:
        gpu_plan(monkeypatch, ReplayModel())
    eager = train(small_config(run="eager", precision="fp32", ema=0.9, cuda_graphs="off"), log=quiet)
    monkeypatch.setattr(torch, "compile", FailingCompile())
    lines = []
    compiled = train(small_config(run="compiled", precision="fp32", ema=0.9, compile=True), log=lines.append)
    assert [line for line in lines if "torch.compile failed" in line] == [
        "torch.compile failed (AssertionError: expected size 512==512, stride 16==1 at dim=1); training goes on "
        "with the plain networks"]
    assert compiled.nets.g_forward is compiled.nets.generator and not compiled.setup.plan.compile
    assert differences(eager, compiled) == (["nothing replayed"] if not graphed else [])  # undone and redone
    if graphed:
        assert compiled.runner.graphed.replayed == compiled.step - execution.WARMUP_G_STEPS


def test_host_sync_is_what_the_model_raises():
    model = ReplayModel()
    x = torch.ones(3)
    with pytest.raises(HostSync, match="_local_scalar_dense"):
        model(lambda: x.sum().item(), torch.Generator())
