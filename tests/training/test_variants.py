"""Every loss, architecture and stabiliser through the one training loop: a few real steps, the right shapes,
finite numbers, every option restored on resume, and clear refusals where an option does not fit."""

import json
import math

import numpy as np
import pytest
import torch

from dcgan import train
from dcgan.cli import main
from dcgan.errors import UserError
from dcgan.models.checkpoint import load_checkpoint
from dcgan.models.runs import load_run
from dcgan.training.history import measurements
from dcgan.training.variants import VARIANTS, compare_variants, flags_for, variants_figure, variants_table
from tests.helpers import assert_same_training_state, quiet, without_timing

OPTIONS = {
    "bce-smoothed": dict(real_label=0.9, fake_label=0.1),
    "lsgan": dict(loss="lsgan"),
    "hinge": dict(loss="hinge"),
    "wgan-gp": dict(loss="wgan-gp"),
    "resnet": dict(arch="resnet"),
    "mlp": dict(arch="mlp", image_size=28),
    "conditional": dict(conditional=True),
    "spectral-norm": dict(spectral_norm=True),
    "ema": dict(ema=0.999),
    "diffaugment": dict(diffaugment="translation,cutout,color"),
    "ttur": dict(lr_g=1e-4, lr_d=4e-4),
    "everything": dict(arch="resnet", loss="wgan-gp", conditional=True, spectral_norm=True, ema=0.99,
                       diffaugment="translation,color", lr_g=1e-4, lr_d=3e-4, n_critic=2),
}
ALL_OPTIONS = OPTIONS["everything"]


@pytest.mark.parametrize("name", OPTIONS)
def test_each_variant_trains_with_finite_numbers_and_the_right_shapes(small_config, tmp_path, name):
    state = train(small_config(epochs=1, **OPTIONS[name]), log=quiet)
    size = state.cfg.image_size
    assert state.step == 4 and len(state.history) == 3
    reported = {"loss_D", "loss_G", "D_x", "D_G_z"} | ({"gradient_penalty"} if state.cfg.loss == "wgan-gp" else set())
    for row in state.history:  # the step's statistics, and the penalty the loss reports
        values = measurements(row, "step")
        assert set(values) == reported and all(map(math.isfinite, values.values()))
    noise = torch.randn(5, state.cfg.nz)
    labels = (torch.arange(5) % 3,) if state.cfg.conditional else ()
    images = state.nets.generator.eval()(noise, *labels)
    assert images.shape == (5, 3, size, size) and images.abs().max() <= 1
    assert state.nets.discriminator.eval()(images, *labels).shape == (5,)
    assert state.sampler is (state.nets.ema_generator if state.cfg.ema else state.nets.generator)
    saved = load_checkpoint(tmp_path / "checkpoints" / "test" / "last.pt")
    assert ("generator_ema" in saved) == bool(state.cfg.ema)


def test_wgan_gp_defaults_and_critic_steps(small_config):
    state = train(small_config(epochs=1, loss="wgan-gp"), log=quiet)  # 4 steps: D steps 4 times, G never
    assert (state.cfg.n_critic, state.cfg.beta1, state.cfg.beta2) == (5, 0.0, 0.9)
    assert state.nets.opt_g.state_dict()["state"] == {}  # G has not stepped yet
    assert len(state.nets.opt_d.state_dict()["state"]) > 0
    stepped = train(small_config(epochs=1, loss="wgan-gp", n_critic=2, run="n2"), log=quiet)
    assert int(stepped.nets.opt_g.state_dict()["state"][0]["step"]) == 2  # 4 D steps, 2 G steps
    assert int(stepped.nets.opt_d.state_dict()["state"][0]["step"]) == 4


def test_ttur_and_defaults_are_recorded_concretely(small_config, tmp_path):
    state = train(small_config(epochs=1, lr_g=1e-4, lr_d=4e-4), log=quiet)
    assert state.nets.opt_g.param_groups[0]["lr"] == 1e-4 and state.nets.opt_d.param_groups[0]["lr"] == 4e-4
    config = json.loads((tmp_path / "checkpoints" / "test" / "config.json").read_text())
    assert (config["lr_g"], config["lr_d"], config["beta1"], config["beta2"], config["n_critic"]) == \
        (1e-4, 4e-4, 0.5, 0.999, 1)


def test_ema_is_what_samples_are_drawn_from(small_config, tmp_path):
    state = train(small_config(epochs=1, ema=0.9), log=quiet)
    saved = load_checkpoint(tmp_path / "checkpoints" / "test" / "last.pt")
    assert any(not torch.equal(saved["generator"][k], saved["generator_ema"][k]) for k in saved["generator"])
    generator = load_run(run="test", checkpoints_dir=str(tmp_path / "checkpoints"), device="cpu").generator
    for name, value in generator.state_dict().items():
        assert torch.equal(value, saved["generator_ema"][name])
    assert all(torch.equal(a, b) for a, b in zip(state.nets.ema_generator.state_dict().values(),
                                                  saved["generator_ema"].values()))


def test_resume_restores_every_option_and_continues_exactly(small_config):
    straight = train(small_config(run="straight", epochs=2, **ALL_OPTIONS), log=quiet)
    train(small_config(run="split", epochs=1, **ALL_OPTIONS), log=quiet)
    resumed = train(small_config(run="split", epochs=2, resume=True, **ALL_OPTIONS), log=quiet)
    assert_same_training_state(straight, resumed)
    averages = straight.nets.ema_generator.state_dict().values(), resumed.nets.ema_generator.state_dict().values()
    for a, b in zip(*averages):
        assert torch.equal(a, b)
    assert without_timing(resumed.history) == without_timing(straight.history)


def test_the_command_line_resume_inherits_every_option(tmp_path):
    from tests.helpers import tiny_run_flags

    flags = ["--arch", "resnet", "--loss", "hinge", "--conditional", "--spectral-norm", "--ema", "0.99",
             "--diffaugment", "cutout", "--lr-g", "1e-4", "--lr-d", "4e-4", "--n-critic", "2"]
    assert main(["train", *map(str, tiny_run_flags(tmp_path, "cli")), "--epochs", "1", *flags]) == 0
    assert main(["train", "--run", "cli", "--resume", "--epochs", "2", "--no-progress", "--data-dir",
                 str(tmp_path / "data"), "--checkpoints-dir", str(tmp_path / "checkpoints"), "--samples-dir",
                 str(tmp_path / "samples")]) == 0
    first = load_checkpoint(tmp_path / "checkpoints" / "cli" / "epoch_001.pt")["config"]
    second = load_checkpoint(tmp_path / "checkpoints" / "cli" / "last.pt")
    assert second["epoch"] == 2 and "generator_ema" in second
    assert {k: v for k, v in second["config"].items() if k not in ("epochs", "resume")} == \
        {k: v for k, v in first.items() if k not in ("epochs", "resume")}
    assert (first["arch"], first["loss"], first["conditional"], first["classes"], first["spectral_norm"],
            first["ema"], first["diffaugment"], first["lr_g"], first["lr_d"], first["n_critic"]) == \
        ("resnet", "hinge", True, 3, True, 0.99, "cutout", 1e-4, 4e-4, 2)


@pytest.mark.parametrize("change, message", [
    (dict(loss="hinge"), "loss=bce but this run asks for loss=hinge"),
    (dict(conditional=True), "conditional=False but this run asks for conditional=True"),
    (dict(spectral_norm=True), "spectral_norm=False but this run asks for spectral_norm=True"),
])
def test_resume_refuses_networks_that_differ(small_config, change, message):
    train(small_config(epochs=1), log=quiet)
    with pytest.raises(UserError, match=message):
        train(small_config(epochs=2, resume=True, **change), log=quiet)


def test_turning_ema_on_at_resume_starts_the_average_from_g(small_config):
    first = train(small_config(epochs=1), log=quiet)
    resumed = train(small_config(epochs=2, resume=True, ema=0.999), log=quiet)
    assert resumed.nets.ema_generator is not None
    assert not torch.equal(next(resumed.nets.ema_generator.parameters()), next(first.nets.generator.parameters()))


@pytest.mark.parametrize("settings, message", [
    (dict(loss="hinge", real_label=0.9), r"targets of the losses that have them \(bce, lsgan, r1\)"),
    (dict(loss="nope"), "unknown --loss 'nope'"),
    (dict(diffaugment="translation,zoom"), "unknown --diffaugment policy 'zoom'"),
    (dict(ema=1.0), r"--ema must lie in \[0, 1\)"),
    (dict(gp_weight=5.0), r"--gp-weight weighs the penalty of --loss wgan-gp only"),
    (dict(r1_gamma=1.0, loss="wgan-gp"), r"--r1-gamma weighs the penalty of --loss r1 only"),
    (dict(classes=3), "--classes applies to --conditional runs only"),
    (dict(n_critic=-1), "--n-critic must be 0 or more"),
    (dict(beta1=1.5), r"--beta1 must lie in \[0, 1\]"),
    (dict(arch="resnet", image_size=48), "unsupported image size 48"),
])
def test_settings_that_do_not_fit_are_refused(small_config, settings, message):
    with pytest.raises(UserError, match=message):
        train(small_config(**settings), log=quiet)


def test_conditional_needs_labels_that_match(small_config, tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for index in range(40):
        Image.new("RGB", (32, 32), (index * 6, 0, 0)).save(folder / f"{index}.png")
    with pytest.raises(UserError, match="--conditional needs a labelled dataset"):
        train(small_config(data=str(folder), conditional=True), log=quiet)
    with pytest.raises(UserError, match="--classes 5 does not match the 3 classes"):
        train(small_config(conditional=True, classes=5), log=quiet)
    assert not (tmp_path / "checkpoints" / "test").exists()


def test_flags_for_writes_the_train_flags():
    assert flags_for({"loss": "hinge", "spectral_norm": True, "ema": 0.999, "lr_g": 1e-4}) == \
        "--loss hinge --spectral-norm --ema 0.999 --lr-g 0.0001"
    from dcgan.cli import build_parser

    for settings in VARIANTS.values():
        build_parser().parse_args(["train", *flags_for(settings).split()])


def test_compare_variants_trains_each_and_tabulates_time_and_fid(small_config, tiny_classifier, tmp_path):
    _, _, _, root = tiny_classifier  # its classifier is cached under root/checkpoints
    base = small_config(data="fashion-mnist", limit=256, epochs=1, eval_n=64, eval_features="classifier",
                        run="v", checkpoints_dir=str(root / "checkpoints"), data_dir=str(root / "data"),
                        nz=16, ngf=8, ndf=8, channels=0)
    rows = compare_variants(base, {"dcgan": {}, "conditional": {"conditional": True}}, log=quiet)
    assert [row["variant"] for row in rows] == ["dcgan", "conditional"]
    for row in rows:
        assert row["epochs"] == 1 and row["seconds"] > 0 and math.isfinite(row["fid"])
        assert row["images"].shape == (10, 1, 32, 32) and "classifier" in row["features"]
    assert 0 <= rows[1]["class_accuracy"] <= 1 and "class_accuracy" not in rows[0]
    table = variants_table(rows).splitlines()
    assert table[0] == "| variant | flags | epochs | time (s) | FID |" and len(table) == 4
    assert "`--conditional`" in table[3] and "class accuracy" in table[3]
    assert len(variants_figure(rows).axes) == 2


def test_presets_set_their_settings_and_flags_given_win():
    from dcgan.cli import train_config
    from dcgan.config import TrainConfig
    from dcgan.presets import PRESETS

    for name, (_, settings) in PRESETS.items():
        cfg = train_config({"epochs": 3}, name).validate()
        assert all(getattr(cfg, key) == value for key, value in settings.items()) and cfg.epochs == 3
    assert train_config({"ema": 0.99}, "recommended").ema == 0.99
    assert TrainConfig.from_preset("anime96", data="anime").arch == "resnet"
    with pytest.raises(UserError, match="unknown preset 'fast': use one of recommended, anime96"):
        TrainConfig.from_preset("fast")


def test_conditional_sampling_returns_the_requested_classes_rows(small_config, tmp_path):
    from PIL import Image

    from dcgan.models.conditional import class_rows
    from dcgan.pictures.grids import grid_image
    from dcgan.pictures.sampling import generate, noise_for

    state = train(small_config(epochs=1, conditional=True), log=quiet)
    generator = state.nets.generator
    noise = noise_for(4, 16, 0).repeat(3, 1)
    images = generate(generator, noise, labels=class_rows(3, 4))
    for k in range(3):  # row k is class k: the same as asking for class k alone
        alone = generate(generator, noise[:4], labels=torch.full((4,), k))
        assert torch.allclose(images[4 * k:4 * k + 4], alone, atol=1e-6)
    assert not torch.allclose(images[0:4], images[4:8], atol=1e-3)  # the label changes the image
    grid = Image.open(tmp_path / "samples" / "test" / "epoch_001.png")
    assert grid.size == grid_image(torch.zeros(30, 3, 32, 32), nrow=10).size  # 3 class rows of 10

    out = tmp_path / "class2.png"
    assert main(["sample", "--run", "test", "--checkpoints-dir", str(tmp_path / "checkpoints"), "--class", "2",
                 "--n", "6", "--out", str(out)]) == 0
    expected = grid_image(generate(generator, noise_for(6, 16, 0), labels=torch.full((6,), 2)), nrow=3)
    assert np.abs(np.asarray(Image.open(out), dtype=int) - np.asarray(expected, dtype=int)).max() <= 1


def test_sample_class_refusals(small_config, tmp_path, capsys):
    train(small_config(epochs=1, conditional=True, run="cond"), log=quiet)
    train(small_config(epochs=1, run="plain"), log=quiet)
    root = str(tmp_path / "checkpoints")
    assert main(["sample", "--run", "cond", "--checkpoints-dir", root, "--class", "3"]) == 2
    assert "--class 3 is out of range: run 'cond' has classes 0 to 2" in capsys.readouterr().err
    assert main(["sample", "--run", "plain", "--checkpoints-dir", root, "--class", "0"]) == 2
    assert "--class needs a conditional run" in capsys.readouterr().err


def test_class_accuracy_recognises_the_requested_classes(tiny_classifier):
    from torch import nn

    from dcgan.data.cache import load_image_data
    from dcgan.data.transforms import to_signed
    from dcgan.metrics.evaluate import class_accuracy

    model, _, _, root = tiny_classifier
    test = load_image_data("fashion-mnist", 32, 1, root / "data", split="test", progress=False)
    by_class = [to_signed(torch.from_numpy(test.images[test.labels == k][:100])) for k in range(10)]

    class RealImagesOfClass(nn.Module):  # a perfect conditional G: a real image of the class asked for
        classes = 10

        def __init__(self, ignore_labels=False):
            super().__init__()
            self.anchor, self.ignore_labels = nn.Parameter(torch.zeros(())), ignore_labels

        def forward(self, z, labels):
            picks = (z[:, 0].abs() * 1000).long() % 100
            return torch.stack([by_class[0 if self.ignore_labels else int(k)][int(i)] for k, i in zip(labels, picks)])

    good = class_accuracy(RealImagesOfClass(), model, 8, 500, 10, 0, torch.device("cpu"))
    deaf = class_accuracy(RealImagesOfClass(ignore_labels=True), model, 8, 500, 10, 0, torch.device("cpu"))
    assert good > 0.85 and deaf < 0.15
