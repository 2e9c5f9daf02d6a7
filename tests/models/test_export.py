"""`dcgan export`: G alone in safetensors + config.json, loaded back by sample, load_run, the notebooks and
Hugging Face's PyTorchModelHubMixin; a folder that is not what export writes is refused in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dcgan import train
from dcgan.cli import main
from dcgan.models.checkpoint import load_checkpoint, restore_generator, restore_networks
from dcgan.models.export import ExportedGenerator
from dcgan.models.runs import RunReference, load_notebook_run, load_run
from dcgan.pictures.grids import grid_image
from dcgan.pictures.model_card import sample_images
from dcgan.pictures.sampling import generate, noise_for
from tests.helpers import quiet

# the test extra installs it; a GPU machine without it (`pytest -m cuda` there) skips this file
PyTorchModelHubMixin = pytest.importorskip("huggingface_hub").PyTorchModelHubMixin


class HubGenerator(ExportedGenerator, PyTorchModelHubMixin):
    """What a user sharing a generator on the Hub writes: the export's class with the mixin."""


@pytest.fixture
def ema_run(small_config):
    """A 2-epoch run that kept a moving average of G, and the export folder beside it."""
    cfg = small_config(ema=0.9)
    state = train(cfg, log=quiet)
    return state, state.paths.checkpoints.parent.parent / "shared"


def export(state, out, *flags):
    return main(["export", "--run", state.paths.name, "--checkpoints-dir", str(state.paths.checkpoints.parent),
                 "--out", str(out), *flags])


def test_an_export_draws_what_its_checkpoint_draws_through_sample_load_run_and_the_notebooks(ema_run, capsys):
    state, out = ema_run
    assert export(state, out) == 0
    assert sorted(path.name for path in out.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                           "samples.png"]
    settings = json.loads((out / "config.json").read_text())
    assert {key: settings[key] for key in ("arch", "image_size", "channels", "nz", "ngf", "weights", "epoch",
                                           "step", "run", "data")} == {
        "arch": "dcgan", "image_size": 32, "channels": 3, "nz": 16, "ngf": 8, "weights": "ema", "epoch": 2,
        "step": 8, "run": "test", "data": "synthetic"}
    assert (out / "model.safetensors").read_bytes()[8:9] == b"{"  # a JSON header then raw tensors: no pickle
    payload = load_checkpoint(state.paths.last_checkpoint)
    noise = noise_for(12, 16, seed=3)
    expected = generate(restore_generator(payload, state.paths.last_checkpoint, weights="generator_ema"), noise)
    assert not torch.equal(expected, generate(restore_networks(payload, state.paths.last_checkpoint)[0], noise))
    run = load_run(checkpoint=str(out), device="cpu")
    generator, cfg, about = run.generator, run.cfg, run.saved
    assert torch.equal(generate(generator, noise), expected)  # the moving average, exactly
    assert (cfg.run, cfg.data, cfg.image_size, about["epoch"]) == ("test", "synthetic", 32, 2)
    generator = load_notebook_run(RunReference("no-such-run", checkpoint=str(out)), say=quiet).generator
    assert torch.equal(generate(generator, noise), expected)
    grid = np.asarray(Image.open(out / "samples.png"))
    assert np.array_equal(grid, np.asarray(grid_image(sample_images(generator, cfg), 8)))
    capsys.readouterr()
    by_run, by_export = out.parent / "by_run.png", out.parent / "by_export.png"
    assert main(["sample", "--run", "test", "--checkpoints-dir", str(state.paths.checkpoints.parent), "--n", "9",
                 "--out", str(by_run)]) == 0
    assert main(["sample", "--checkpoint", str(out), "--n", "9", "--out", str(by_export)]) == 0
    assert by_run.read_bytes() == by_export.read_bytes()
    assert export(state, out, "--weights", "raw") == 0  # an earlier export is replaced
    run = load_run(checkpoint=str(out), device="cpu")
    generator, about = run.generator, run.saved
    assert about["weights"] == "raw"
    assert torch.equal(generate(generator, noise),
                       generate(restore_networks(payload, state.paths.last_checkpoint)[0], noise))


def test_the_folder_is_what_hugging_faces_mixin_saves_and_loads(ema_run, tmp_path):
    state, out = ema_run
    assert export(state, out) == 0
    noise = noise_for(6, 16, seed=0)
    generator = load_run(checkpoint=str(out), device="cpu").generator
    hub = HubGenerator.from_pretrained(str(out)).eval()  # a local folder: no network
    assert torch.equal(generate(hub, noise), generate(generator, noise))
    hub.save_pretrained(tmp_path / "resaved")
    assert {"config.json", "model.safetensors"} <= {path.name for path in (tmp_path / "resaved").iterdir()}
    run = load_run(checkpoint=str(tmp_path / "resaved"), device="cpu")
    again, cfg = run.generator, run.cfg
    assert torch.equal(generate(again, noise), generate(generator, noise)) and cfg.run == "test"


def test_the_model_card_gives_fid_with_its_feature_space(tiny_classifier, small_config, tmp_path):
    _, _, _, root = tiny_classifier
    cfg = small_config(data="fashion-mnist", nz=100, ngf=16, ndf=16, limit=320, epochs=1, eval_every=1, eval_n=100,
                       data_dir=str(root / "data"), checkpoints_dir=str(root / "checkpoints"), run="card")
    state = train(cfg, log=quiet)
    measured = json.loads((state.paths.checkpoints / "eval_001.json").read_text())
    assert main(["export", "--run", "card", "--checkpoints-dir", str(root / "checkpoints"), "--out",
                 str(tmp_path / "card")]) == 0
    card = (tmp_path / "card" / "README.md").read_text()
    assert f"FID {measured['fid']:.2f}" in card and measured["features"] in card
    assert "**fashion-mnist**" in card and "**1 epochs**" in card and "1-channel" in card
    assert card.startswith("---\nlicense: mit\n")  # the Hub's front matter


def corrupt(out, problem):
    """Spoil an export folder the way `problem` says."""
    config = out / "config.json"
    settings = json.loads(config.read_text())
    weights = {name: tensor.clone() for name, tensor in load_file(str(out / "model.safetensors")).items()}
    if problem == "no weights":
        (out / "model.safetensors").unlink()
    elif problem == "not json":
        config.write_text("{'arch': dcgan")
    elif problem == "huge config":
        config.write_text(json.dumps({**settings, "notes": "x" * (2 << 20)}))
    elif problem in ("nz as text", "odd size", "escaping run", "no ngf", "wider than its weights"):
        change = {"nz as text": {"nz": "16"}, "odd size": {"image_size": 33}, "escaping run": {"run": "../../x"},
                  "wider than its weights": {"ngf": 16}}.get(problem, {})
        settings.update(change)
        if problem == "no ngf":
            del settings["ngf"]
        config.write_text(json.dumps(settings))
    elif problem == "pickle":
        torch.save(weights, out / "model.safetensors")
    elif problem == "extra tensor":
        save_file({**weights, "hidden.weight": torch.zeros(2)}, str(out / "model.safetensors"))
    elif problem == "nan":
        name = next(name for name, tensor in weights.items() if tensor.is_floating_point())
        weights[name][0] = float("nan")
        save_file(weights, str(out / "model.safetensors"))


@pytest.mark.parametrize("problem, told", [
    ("no weights", "is not a dcgan export (model.safetensors is missing)"),
    ("not json", "config.json: it is not JSON"),
    ("huge config", "more than the 1,048,576 it may be"),
    ("nz as text", "nz = '16' is not a whole number"),
    ("odd size", "unsupported image size 33"),
    ("escaping run", "run name"),
    ("no ngf", "it lacks ngf"),
    ("wider than its weights", "has shape"),
    ("pickle", "it is not a safetensors file"),
    ("extra tensor", "unexpected tensor 'hidden.weight'"),
    ("nan", "holds NaN or infinite values"),
])
def test_a_malformed_export_folder_is_refused_in_one_line(ema_run, capsys, problem, told):
    state, out = ema_run
    assert export(state, out) == 0
    corrupt(out, problem)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out), "--n", "4", "--out", str(out.parent / "x.png")]) == 2
    error = capsys.readouterr().err
    assert told in error and error.count("\n") == 1 and "Traceback" not in error, error
    assert not (out.parent / "x.png").exists()


def test_export_refuses_what_would_lose_or_mix_files(ema_run, small_config, capsys):
    state, out = ema_run
    runs = state.paths.checkpoints.parent
    assert export(state, state.paths.checkpoints) == 2  # the run's own folder: its config.json would be replaced
    assert "holds 'epoch_001.pt', which is not a file of a dcgan export" in capsys.readouterr().err
    out.mkdir()
    (out / "config.json").write_text('{"model_type": "bert"}')
    assert export(state, out) == 2
    assert "but no dcgan config.json" in capsys.readouterr().err and not (out / "model.safetensors").exists()
    (out.parent / "a-file").write_text("")
    assert export(state, out.parent / "a-file") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    train(small_config(run="plain", epochs=1), log=quiet)
    shutil.rmtree(out)
    assert main(["export", "--run", "plain", "--checkpoints-dir", str(runs), "--out", str(out), "--weights",
                 "ema"]) == 2
    assert "no moving average of G" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(runs / "plain"), "--out", str(out)]) == 2
    assert "export reads a checkpoint file" in capsys.readouterr().err
