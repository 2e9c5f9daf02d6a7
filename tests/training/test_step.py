"""The step as a reader and a replay see it: bit for bit what an independent pytorch/examples-style step computes,
and a short path from train() to each optimizer's step."""

import pytest
import torch

import dcgan
from dcgan import train
from tests.helpers import quiet


@pytest.mark.parametrize("settings", [
    dict(loss="bce", real_label=0.9), dict(loss="hinge"), dict(loss="wgan-gp", n_critic=2),
    dict(loss="r1", r1_gamma=5.0), dict(loss="bce", ema=0.9, ema_rampup=0.5), dict(loss="bce", ema=0.7, ema_rampup=0.0),
], ids=lambda settings: "-".join(f"{k}={v}" for k, v in settings.items()))
def test_the_step_is_bit_identical_to_an_independent_pytorch_examples_step(small_config, settings):
    """From the same weights, batches and random stream, five steps of the package's step and of
    reference_step.py leave every weight (and the moving average of G) equal, bit for bit."""
    import copy

    from dcgan.training.start import start_run
    from dcgan.training.step import train_step
    from tests.training.reference_step import reference_step

    cfg = small_config(precision="fp32", channels_last="off", **settings)
    state = start_run(cfg, quiet)
    nets, setup = state.nets, state.setup
    G, D = copy.deepcopy(nets.generator), copy.deepcopy(nets.discriminator)
    ema = copy.deepcopy(nets.ema_generator) if nets.ema_generator is not None else None
    opt_g = torch.optim.Adam(G.parameters(), lr=setup.cfg.lr_g, betas=(setup.cfg.beta1, setup.cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=setup.cfg.lr_d, betas=(setup.cfg.beta1, setup.cfg.beta2))
    rng = torch.Generator().manual_seed(99)
    state.progress.noise_rng.set_state(rng.get_state())
    batches = [setup.batches.images[i * 32:(i + 1) * 32].float() / 127.5 - 1 for i in range(4)]
    g_updates = 0
    for step, real in enumerate(batches + batches[:1]):
        g_step = (step + 1) % setup.cfg.n_critic == 0
        train_step(state, real)
        state.progress.step += 1
        g_updates = reference_step(G, D, opt_g, opt_d, real, setup.cfg.nz, rng, setup.cfg.loss,
                                   setup.cfg.real_label, setup.cfg.fake_label, setup.loss.weight, g_step, ema,
                                   setup.cfg.ema, g_updates, setup.cfg.ema_rampup)
        for mine, theirs in ((nets.generator, G), (nets.discriminator, D), (nets.ema_generator, ema)):
            if mine is not None:
                for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
                    assert torch.equal(a, b), f"step {step + 1}: {name} differs"
    assert torch.equal(state.progress.noise_rng.get_state(), rng.get_state())  # the stream advanced as far


def test_the_eager_path_from_train_to_an_optimizer_step_is_five_calls(small_config, monkeypatch):
    """Counted on the stack at the moment an optimizer steps: train, train_epochs, train_epoch, train_step and
    update_d (or update_g)."""
    import inspect
    from pathlib import Path

    package, stacks = str(Path(dcgan.__file__).parent), []
    step = torch.optim.Adam.step

    def recording(self, *args, **kwargs):  # the package's frames on the stack (torch's own wrappers left out)
        stacks.append([frame.function for frame in inspect.stack()[1:] if frame.filename.startswith(package)])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    train(small_config(epochs=1), log=quiet)
    assert len(stacks) == 8  # 4 steps, each with a D and a G update
    for stack in stacks:
        path = stack[:stack.index("train") + 1][::-1]
        assert path[:4] == ["train", "train_epochs", "train_epoch", "train_step"]
        assert path[4] in ("update_d", "update_g") and len(path) == 5
