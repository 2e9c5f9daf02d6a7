"""Speed settings: how they resolve per device, and that each one trains the same model as the plain path."""

import torch

from dcgan import train
from dcgan.config import TrainConfig
from dcgan.models.checkpoint import load_checkpoint
from dcgan.training.speed import cpu_has_native_bf16, speed_plan


def final_weights(state) -> list[torch.Tensor]:
    return [value.detach().clone() for value in state.nets.generator.state_dict().values()]


def test_auto_picks_bf16_where_it_is_fast_and_channels_last_everywhere():
    cpu = speed_plan(TrainConfig(), torch.device("cpu"))
    assert (cpu.bf16, cpu.channels_last, cpu.fused_adam, cpu.compile) == (cpu_has_native_bf16(), True, False, False)
    assert cpu.describe() == ("bf16 autocast" if cpu.bf16 else "fp32") + ", channels-last"
    cuda = speed_plan(TrainConfig(), torch.device("cuda"))
    assert (cuda.bf16, cuda.channels_last, cuda.fused_adam) == (True, True, True)
    assert cuda.describe() == "bf16 autocast, channels-last, fused Adam, CUDA graphs"
    forced = speed_plan(TrainConfig(precision="fp32", channels_last="off", compile=True), torch.device("cuda"))
    assert (forced.bf16, forced.channels_last, forced.compile) == (False, False, True)


def test_data_on_the_device_or_streamed_trains_the_same_weights(small_config):
    on_device = train(small_config(flip=True, data_on_device="on", run="on"), log=lambda line: None)
    streamed = train(small_config(flip=True, data_on_device="off", run="off"), log=lambda line: None)
    assert all(torch.equal(a, b) for a, b in zip(final_weights(on_device), final_weights(streamed)))


def test_bf16_autocast_trains_with_fp32_weights_and_optimizer_state(small_config):
    plain = train(small_config(precision="fp32", run="fp32"), log=lambda line: None)
    state = train(small_config(precision="bf16", run="bf16"), log=lambda line: None)
    epoch = [row for row in state.history if row["kind"] == "epoch"][-1]
    assert all(torch.isfinite(torch.tensor(epoch[key])) for key in ("loss_D", "loss_G", "D_x", "D_G_z"))
    assert all(value.dtype == torch.float32 for value in state.nets.generator.state_dict().values()
               if value.is_floating_point())
    assert all(moment.dtype == torch.float32 for group in state.nets.opt_d.state.values() for moment in group.values()
               if torch.is_tensor(moment) and moment.is_floating_point())
    drift = max((a - b).abs().max().item() for a, b in zip(final_weights(plain), final_weights(state)))
    assert 0 < drift < 0.05  # bf16 changes the arithmetic a little, not the model


def test_channels_last_trains_the_same_model_and_saves_plain_checkpoints(small_config, tmp_path):
    plain = train(small_config(precision="fp32", channels_last="off", run="nchw"), log=lambda line: None)
    state = train(small_config(precision="fp32", channels_last="on", run="nhwc"), log=lambda line: None)
    conv = next(module for module in state.nets.discriminator.modules() if isinstance(module, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(final_weights(plain), final_weights(state)))
    saved = load_checkpoint(tmp_path / "checkpoints" / "nhwc" / "last.pt")
    assert saved["generator"].keys() == plain.nets.generator.state_dict().keys()


def test_compiled_networks_train_the_same_model(small_config, tmp_path):
    eager = train(small_config(epochs=1, precision="fp32", run="eager"), log=lambda line: None)
    lines = []
    compiled = train(small_config(epochs=1, precision="fp32", compile=True, run="compiled"), log=lines.append)
    assert "compiled" in lines[1]
    assert compiled.setup.plan.compile and not any("torch.compile failed" in line for line in lines)  # no fallback
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(final_weights(eager), final_weights(compiled)))
    saved = load_checkpoint(tmp_path / "checkpoints" / "compiled" / "last.pt")
    assert not any(key.startswith("_orig_mod") for key in saved["generator"])  # the plain module is saved
