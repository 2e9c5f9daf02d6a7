"""Architecture specs (models/architectures.py) and the settings' roles: G and D are chosen separately, every
registered design builds at every size it declares, and a setting's roles decide what a resume must keep, what a
checkpoint never gives and what an export records."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from dcgan import TrainConfig, train
from dcgan.cli import build_parser, main, train_config
from dcgan.config import families, fields_with, help_of
from dcgan.errors import SettingError, UserError
from dcgan.models.architectures import unused_settings
from dcgan.models.checkpoint import check_architecture, load_checked, load_checkpoint, restore_networks
from dcgan.models.export import export_fields, export_settings, load_export, write_export
from dcgan.models.parts import build_networks
from dcgan.pictures.sampling import generate, noise_for
from dcgan.registry import DISCRIMINATORS, GENERATORS
from dcgan.training.state import save_checkpoint


def quiet(line: str) -> None:
    pass


def declared(registry):
    return [(name, size) for name in registry.names for size in registry.spec(name).sizes]


@pytest.mark.parametrize("name, size", declared(GENERATORS))
def test_every_generator_draws_images_of_every_size_it_declares(name, size):
    cfg = TrainConfig(generator=name, discriminator="mlp", image_size=size, channels=3, nz=4, ngf=2,
                      hidden=2).validate()
    with torch.no_grad():
        images = build_networks(cfg)[0](torch.randn(2, 4))
    assert images.shape == (2, 3, size, size)


@pytest.mark.parametrize("name, size", declared(DISCRIMINATORS))
def test_every_discriminator_judges_images_of_every_size_it_declares(name, size):
    cfg = TrainConfig(generator="mlp", discriminator=name, image_size=size, channels=1, ndf=2, hidden=2).validate()
    with torch.no_grad():
        logits = build_networks(cfg)[1](torch.randn(2, 1, size, size))
    assert logits.shape == (2,)


def test_arch_is_the_family_and_each_part_can_be_chosen_alone():
    assert set(families()) == {"dcgan", "resnet", "mlp"}
    assert TrainConfig(arch="resnet").architectures() == ("resnet", "resnet")
    assert TrainConfig(arch="resnet", discriminator="mlp").architectures() == ("resnet", "mlp")
    generator, discriminator = build_networks(TrainConfig(generator="mlp", discriminator="resnet", image_size=32,
                                                          channels=1, hidden=8, ndf=4).validate())
    assert type(generator).__name__ == "MLPGenerator" and type(discriminator).__name__ == "ResNetDiscriminator"


@pytest.mark.parametrize("settings, told", [
    (dict(generator="mlp", image_size=28), "unsupported image size 28 for the dcgan discriminator: use 32, 64, 96 "
                                           "or 128 (--arch mlp takes 28)"),
    (dict(arch="resnet", image_size=48), "unsupported image size 48 for the resnet generator"),
    (dict(arch="mlp", image_size=200), "unsupported image size 200 for the mlp generator: use 8 to 128"),
    (dict(generator="stylegan"), "unknown --generator 'stylegan': use dcgan, resnet, mlp"),
    (dict(discriminator=3), "discriminator = 3 is not a string"),
])
def test_a_size_or_a_name_no_spec_supports_is_refused_in_one_line(settings, told):
    with pytest.raises(SettingError, match="^" + told.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        TrainConfig(**settings).validate().check_parts()  # (names and sizes: checked when the parts are used)


def test_the_cli_help_lists_each_spec_with_its_help_and_sizes(capsys):
    assert "mlp: one fully connected hidden layer" in help_of("generator")
    assert "(8 to 128 pixels)" in help_of("discriminator") and "(32, 64, 96 or 128 pixels)" in help_of("generator")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--generator GENERATOR G's architecture; empty follows --arch. dcgan: the DCGAN generator" in text


def test_a_g_and_a_d_of_different_designs_train_resume_and_export(small_config, tmp_path):
    """(a): chosen apart, they train, their checkpoint resumes and their export draws what the run's G draws."""
    cfg = small_config(generator="resnet", discriminator="mlp", hidden=8, epochs=1, limit=64)
    state = train(cfg, log=quiet)
    path = state.paths.last_checkpoint
    payload = load_checkpoint(path)
    assert (payload["config"]["generator"], payload["config"]["discriminator"]) == ("resnet", "mlp")
    generator, discriminator = restore_networks(payload, path)
    assert type(generator).__name__ == "ResNetGenerator" and type(discriminator).__name__ == "MLPDiscriminator"
    resumed = train(dataclasses.replace(cfg, resume=True, epochs=2), log=quiet)
    assert resumed.epoch == 2
    with pytest.raises(UserError, match="discriminator=mlp but this run asks for discriminator=dcgan"):
        train(dataclasses.replace(cfg, resume=True, epochs=3, discriminator=""), log=quiet,
              flags={"resume", "epochs", "discriminator"})  # as the CLI gives --discriminator ""
    settings = export_settings(resumed.cfg, {"run": "mixed", "data": "synthetic", "epoch": 2, "step": 4,
                                             "weights": "raw"})
    assert settings["generator"] == "resnet" and "hidden" not in settings  # what G does not read stays out
    saved_g = restore_networks(load_checkpoint(path), path)[0]
    write_export(tmp_path / "out", saved_g, settings)
    exported, exported_cfg, _ = load_export(tmp_path / "out")
    noise = noise_for(4, 16, seed=0)
    assert torch.equal(generate(exported, noise), generate(saved_g, noise))
    assert exported_cfg.architectures()[0] == "resnet"


def test_a_checkpoint_and_an_export_from_before_the_choice_of_g_and_d_mean_what_they_meant(small_config, tmp_path):
    state = train(small_config(arch="resnet", epochs=1, limit=64), log=quiet)
    payload = load_checkpoint(state.paths.last_checkpoint)
    for name in ("generator", "discriminator"):  # a config.json of before: no such settings
        del payload["config"][name]
    save_checkpoint(payload, [tmp_path / "old.pt"])
    generator, discriminator = restore_networks(load_checkpoint(tmp_path / "old.pt"), tmp_path / "old.pt")
    assert type(generator).__name__ == "ResNetGenerator" and type(discriminator).__name__ == "ResNetDiscriminator"
    settings = export_settings(state.cfg, {"run": "old", "data": "synthetic", "epoch": 1, "step": 2,
                                           "weights": "raw"})
    write_export(tmp_path / "export", state.nets.generator, settings)
    old = {key: value for key, value in settings.items() if key != "generator"}
    old.update(dcgan_export_version=1, hidden=128)  # version 1 recorded every width, and no generator
    (tmp_path / "export" / "config.json").write_text(json.dumps(old))
    generator, cfg, _ = load_export(tmp_path / "export")
    assert type(generator).__name__ == "ResNetGenerator" and cfg.architectures() == ("resnet", "resnet")
    del settings["generator"]  # in a version 2 export, generator is required
    (tmp_path / "export" / "config.json").write_text(json.dumps(settings))
    with pytest.raises(UserError, match="it lacks generator"):
        load_export(tmp_path / "export")


def test_every_setting_with_the_architecture_role_that_the_run_reads_must_stay_on_resume(tmp_path):
    """(c): check_architecture refuses exactly the architecture settings the saved G and D read."""
    saved = TrainConfig(image_size=32, channels=1, classes=0).validate()
    changed = {"image_size": 64, "channels": 3, "arch": "resnet", "generator": "mlp", "discriminator": "mlp",
               "nz": 7, "ngf": 9, "ndf": 9, "hidden": 9, "loss": "hinge", "conditional": True, "classes": 5,
               "spectral_norm": True}
    assert set(changed) == set(fields_with("architecture"))
    assert unused_settings(saved) == {"hidden"}  # the dcgan G and D read ngf and ndf, not mlp's width
    for name, value in changed.items():
        wanted = dataclasses.replace(saved, **{name: value})
        if name in unused_settings(saved):
            check_architecture(saved, wanted, tmp_path / "x.pt")  # shapes nothing: free
        else:
            with pytest.raises(UserError, match=f"trained with {name}="):
                check_architecture(saved, wanted, tmp_path / "x.pt")
    conditional = dataclasses.replace(saved, conditional=True, classes=4)
    for name in fields_with("follows_data"):  # 0 asks for whatever the run has
        check_architecture(conditional, dataclasses.replace(conditional, **{name: 0}), tmp_path / "x.pt")
    check_architecture(saved, dataclasses.replace(saved, lr=1e-3, batch_size=7, epochs=9), tmp_path / "x.pt")


def test_the_roles_decide_what_a_resume_inherits_and_what_an_export_records(small_config):
    state = train(small_config(epochs=1, limit=64, compile=False, keep_last=3), log=quiet)
    given = {"resume": True, "run": "test", "checkpoints_dir": str(state.paths.checkpoints.parent),
             "samples_dir": str(state.paths.samples.parent)}
    cfg = train_config(given).over_saved(load_checked(state.paths.last_checkpoint)[1], given)
    assert cfg.keep_last == 3  # a setting of the run: inherited
    for name in fields_with("session"):  # this invocation's: never inherited, default unless given
        assert getattr(cfg, name) == (True if name == "resume" else getattr(TrainConfig(), name)), name
    assert fields_with("place", "folder") == ("data_dir", "samples_dir", "checkpoints_dir", "logdir")
    assert set(fields_with("place")) == {"data_dir", "samples_dir", "checkpoints_dir", "logdir", "inception_weights",
                                         "checkpoint"}
    mlp = TrainConfig(arch="mlp", image_size=28)
    assert export_fields(mlp) == ("image_size", "channels", "arch", "generator", "nz", "hidden", "conditional",
                                  "classes")
    assert "ngf" in export_fields(TrainConfig()) and "hidden" not in export_fields(TrainConfig())


def test_train_takes_generator_and_discriminator_flags(small_config, tmp_path, capsys):
    root = tmp_path / "cli"
    assert main(["train", "--data", "synthetic", "--image-size", "16", "--generator", "mlp", "--discriminator",
                 "mlp", "--hidden", "8", "--nz", "8", "--limit", "32", "--batch-size", "16", "--epochs", "1",
                 "--run", "flags", "--checkpoints-dir", str(root / "c"), "--samples-dir", str(root / "s"),
                 "--data-dir", str(root / "d"), "--no-progress", "--device", "cpu"]) == 0
    saved = json.loads((root / "c" / "flags" / "config.json").read_text())
    assert (saved["arch"], saved["generator"], saved["discriminator"]) == ("dcgan", "mlp", "mlp")
    capsys.readouterr()
    assert main(["train", "--generator", "nope", "--data", "synthetic"]) == 2
    assert "unknown --generator 'nope': use dcgan, resnet, mlp" in capsys.readouterr().err
