"""A checkpoint resumed under another speed plan than the one that wrote it: CPU and GPU, graphed or not,
channels-last or not. Adam's state must follow the resuming run (its flags, the device of its step counts, the
layout of its moments), never the checkpoint."""

import copy

import torch
from torch import nn

from dcgan import train
from dcgan.config import TrainConfig
from dcgan.models.checkpoint import load_checkpoint
from dcgan.registry import LOSSES
from dcgan.training.resume import load_optimizer
from dcgan.training.state import save_checkpoint
from tests.helpers import quiet
from tests.training.replay_model import ReplayModel
from tests.training.test_graphs import differences, gpu_plan

CFG = TrainConfig().resolved(LOSSES.spec("bce"))


def stepped_adam(parameter: nn.Parameter, **options) -> torch.optim.Adam:
    optimizer = torch.optim.Adam([parameter], **options)
    parameter.grad = torch.linspace(-1, 1, parameter.numel()).view_as(parameter)
    optimizer.step()
    return optimizer


def test_resumed_adam_takes_this_runs_flags_and_keeps_its_step_counts_on_the_parameters_device():
    """A checkpoint of CPU Adam (step counts on the host, neither fused nor capturable) continued by capturable
    Adam on another device (here `meta` stands for CUDA): load_state_dict places `step` by the saved groups' flags,
    so those must be this run's before loading, or the step count stays on the host, where a graph never
    increments it and the fused kernel gets a host pointer."""
    saved = stepped_adam(nn.Parameter(torch.ones(2, 3))).state_dict()
    assert saved["state"][0]["step"].device.type == "cpu" and not saved["param_groups"][0]["capturable"]
    on_device = nn.Parameter(torch.empty(2, 3, device="meta"))
    resumed = torch.optim.Adam([on_device], capturable=True)
    load_optimizer(resumed, copy.deepcopy(saved), 1e-3, CFG)
    state = resumed.state[on_device]
    assert [state[key].device.type for key in ("step", "exp_avg", "exp_avg_sq")] == ["meta"] * 3
    assert state["step"].dtype == torch.float32
    group = resumed.param_groups[0]
    assert group["capturable"] and not group["fused"] and group["lr"] == 1e-3 and group["betas"] == (0.5, 0.999)


def test_loaded_moments_take_their_parameters_layout_and_keep_their_values():
    """Moments saved by a channels-last run, loaded for a contiguous one (--compile on CUDA turns channels-last
    off). Fused Adam on CUDA refuses moments whose strides differ from the parameter's (the CPU kernel does not
    mind): they are re-laid, and the values, so the update, stay those of the checkpoint."""
    start = torch.randn(4, 3, 4, 4)
    saved = stepped_adam(nn.Parameter(start.to(memory_format=torch.channels_last))).state_dict()
    assert saved["state"][0]["exp_avg"].stride() != start.stride()

    def second_step(**options) -> torch.Tensor:
        parameter = nn.Parameter(start.clone())
        optimizer = torch.optim.Adam([parameter], **options)
        load_optimizer(optimizer, copy.deepcopy(saved), 2e-4, CFG)
        parameter.grad = torch.cos(torch.arange(parameter.numel(), dtype=torch.float32)).view_as(parameter)
        optimizer.step()
        state = optimizer.state[parameter]
        assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == parameter.stride()
        return parameter.detach()

    assert torch.allclose(second_step(fused=True), second_step(), rtol=1e-5, atol=1e-7)


def test_a_channels_last_checkpoint_resumes_channels_last_off_with_moments_laid_out_like_the_weights(small_config):
    train(small_config(epochs=1, channels_last="on"), log=quiet)
    resumed = train(small_config(epochs=2, channels_last="off", resume=True), log=quiet)
    for optimizer in (resumed.nets.opt_g, resumed.nets.opt_d):
        for parameter, state in optimizer.state.items():
            assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == parameter.stride()


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
    assert all(not group["capturable"] and not group["fused"] for group in resumed.nets.opt_d.param_groups)


def test_a_checkpoint_of_an_eager_cpu_run_continues_graphed_as_it_would_eagerly(small_config, monkeypatch):
    """Train on a laptop, continue on a GPU server with graphs: the modelled graphs train what eager steps would."""
    train(small_config(run="laptop", epochs=1, precision="fp32"), log=quiet)
    model = ReplayModel()
    gpu_plan(monkeypatch, model)
    options = dict(epochs=4, precision="fp32", resume=True,
                   checkpoint=str(small_config().checkpoints_dir + "/laptop/last.pt"))
    eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet)
    graphed = train(small_config(run="graphed", **options), log=quiet)
    assert all(group["capturable"] and group["fused"] for group in graphed.nets.opt_g.param_groups)
    assert model.replays == 12 - 3 and differences(eager, graphed) == []
