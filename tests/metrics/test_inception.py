"""Inception features: where the weights are found, how they are read, and the evaluation through them.

The real FID weights cannot be downloaded here, so a file of the same network with random weights stands in:
the loading path, the network and the metric code are the real ones; only the numbers mean nothing."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from dcgan.cli import main
from dcgan.errors import UserError
from dcgan.metrics.evaluate import evaluate
from dcgan.metrics.features import feature_model
from dcgan.metrics.inception import (
    WEIGHTS_FILE,
    default_weights_path,
    find_weights,
    load_inception,
    read_weights,
    to_inception_input,
)
from dcgan.models.runs import RunReference

CPU = torch.device("cpu")


def place_weights(source: Path) -> Path:
    """Copy a weights file where torch-fidelity would have downloaded it (under this test's TORCH_HOME)."""
    target = default_weights_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    return target


def test_images_become_the_uint8_rgb_torch_fidelity_expects():
    gray = torch.tensor([-1.0, 0.0, 1.0, 0.5]).view(1, 1, 2, 2)
    pixels = to_inception_input(gray)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 2, 2)
    assert pixels[0, 0].flatten().tolist() == [0, 128, 255, 191]  # 127.5 rounds to even: 128
    assert torch.equal(pixels[0, 0], pixels[0, 2])
    colour = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.equal(to_inception_input(colour).float() / 127.5 - 1,
                       ((colour + 1) * 127.5).round() / 127.5 - 1)


def test_the_network_gives_2048_features_for_any_size_and_channels(random_inception_weights):
    model = load_inception(random_inception_weights, CPU)
    gray = torch.rand(3, 1, 32, 32) * 2 - 1
    features = model.features(gray)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    assert torch.equal(features, model.features(gray.expand(-1, 3, -1, -1)))  # grey is repeated to RGB
    assert torch.equal(model.features(gray[:1]), features[:1])  # deterministic, batch-independent
    assert model.features(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 2048)


def test_weights_are_found_in_the_flag_then_in_torch_home(random_inception_weights, tmp_path):
    assert find_weights() is None
    assert find_weights(str(random_inception_weights)) == random_inception_weights
    with pytest.raises(UserError, match="no such file"):
        find_weights(str(tmp_path / "missing.pth"))
    placed = place_weights(random_inception_weights)
    assert placed.name == WEIGHTS_FILE and find_weights() == placed


def test_a_weights_file_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "evil.pth"
    bad.write_bytes(pickle.dumps({"Conv2d_1a_3x3.conv.weight": Payload()}))
    with pytest.raises(UserError, match="not a usable Inception weights file"):
        read_weights(bad)
    assert not marker.exists()


def test_weights_of_another_network_are_refused(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="do not fit Inception-v3"):
        load_inception(other, CPU)


def test_auto_prefers_inception_when_its_weights_are_on_disk(random_inception_weights, tmp_path):
    args = dict(checkpoints_root=tmp_path, data_root=tmp_path, device=CPU, progress=False, log=print)
    with pytest.raises(UserError, match=f"{WEIGHTS_FILE} are not on disk.*labelled dataset"):
        feature_model("auto", "synthetic", **args)
    model, label = feature_model("auto", "synthetic", **args, inception_weights=str(random_inception_weights))
    assert label.startswith("Inception-v3") and model.num_features == 2048
    place_weights(random_inception_weights)
    _, label = feature_model("auto", "synthetic", **args)
    assert label.startswith("Inception-v3")


def test_inception_without_weights_or_network_says_which_file_and_where(monkeypatch, tmp_path):
    import dcgan.metrics.inception

    def offline(url, destination, progress=True):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(dcgan.metrics.inception.torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as caught:
        feature_model("inception", "fashion-mnist", tmp_path, tmp_path, CPU, False, print)
    message = str(caught.value)
    assert "\n" not in message and WEIGHTS_FILE in message and str(default_weights_path().parent) in message
    assert "--inception-weights" in message and "Name or service not known" in message


def test_evaluate_and_the_command_run_on_inception_features(random_inception_weights, small_config, tmp_path,
                                                            capsys):
    from dcgan import train

    train(small_config(epochs=1, limit=64), log=lambda line: None)  # synthetic shapes: unlabelled
    where = dict(checkpoints_dir=str(tmp_path / "checkpoints"), data_dir=str(tmp_path / "data"))
    result = evaluate(RunReference("test", device="cpu", **where), n=24, features="inception",
                      inception_weights=str(random_inception_weights), progress=False, log=lambda line: None)
    saved = json.loads((tmp_path / "checkpoints" / "test" / "eval_001.json").read_text())
    assert saved["features"].startswith("Inception-v3") and saved["n_real"] == saved["n_fake"] == 24
    assert saved["fid"] == result["fid"] and result["fid"] >= 0 and 0 <= result["precision"] <= 1
    place_weights(random_inception_weights)
    code = main(["evaluate", "--run", "test", "--n", "24", "--checkpoints-dir", where["checkpoints_dir"],
                 "--data-dir", where["data_dir"], "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "FID (Inception-v3" in out and f"{result['fid']:.3f}" in out  # auto found the weights


def test_fid_on_our_inception_features_equals_torchmetrics_own_inception_fid(random_inception_weights):
    from torchmetrics.image.fid import FrechetInceptionDistance

    from dcgan.metrics.fid import frechet_distance

    generator = torch.Generator().manual_seed(0)
    real = torch.rand(20, 3, 32, 32, generator=generator) * 2 - 1
    fake = (torch.rand(20, 1, 32, 32, generator=generator) * 2 - 1).clamp(-0.5, 1)
    model = load_inception(random_inception_weights, CPU)
    ours = frechet_distance(model.features(real).double(), model.features(fake).double())
    reference = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(random_inception_weights),
                                         antialias=False)  # torchmetrics' Inception path, on our own test file
    reference.update(to_inception_input(real), real=True)
    reference.update(to_inception_input(fake), real=False)
    assert ours == pytest.approx(float(reference.compute()), rel=1e-3)
