"""Shared fixtures: small configs that train in seconds on the CPU, and real Fashion-MNIST when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcgan import TrainConfig
from dcgan.data.sources import find_idx_files
from dcgan.registry import DATASETS

FASHION_DEBIAN = DATASETS.spec("fashion-mnist").source.system_folder


@pytest.fixture
def small_config(tmp_path):
    """A function building a TrainConfig that trains in a second: synthetic 32x32, narrow nets, files in tmp."""

    def build(**overrides) -> TrainConfig:
        values = dict(data="synthetic", image_size=32, ngf=8, ndf=8, nz=16, batch_size=32, limit=128, epochs=2,
                      log_every=2, run="test", data_dir=str(tmp_path / "data"),
                      samples_dir=str(tmp_path / "samples"), checkpoints_dir=str(tmp_path / "checkpoints"),
                      progress=False, device="cpu")
        values.update(overrides)
        return TrainConfig(**values)

    return build


@pytest.fixture(scope="session")
def fashion_mnist_available() -> Path:
    """Debian's Fashion-MNIST folder; tests using it skip where it is missing, except in CI where it must exist."""
    if find_idx_files([FASHION_DEBIAN], "train") is None:
        if os.environ.get("CI"):
            pytest.fail(f"Fashion-MNIST missing from {FASHION_DEBIAN}: CI installs dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return FASHION_DEBIAN


@pytest.fixture(scope="session")
def fashion_run(fashion_mnist_available, tmp_path_factory):
    """A real 300-step run of the full-width 32x32 DCGAN on Fashion-MNIST, shared by the tests that need one."""
    from dcgan import train

    root = tmp_path_factory.mktemp("fashion")
    cfg = TrainConfig(data="fashion-mnist", image_size=32, batch_size=64, limit=64 * 150, epochs=2, log_every=10,
                      run="fm", data_dir=str(root / "data"), samples_dir=str(root / "samples"),
                      checkpoints_dir=str(root / "checkpoints"), progress=False, device="cpu")
    return train(cfg, log=lambda line: None), root


@pytest.fixture(scope="session")
def fashion_classifier(fashion_run):
    """The Fashion-MNIST feature classifier, trained once into the shared run's checkpoints folder."""
    import torch

    from dcgan.metrics.classifier import load_or_train_classifier

    _, root = fashion_run
    lines = []
    model, test_accuracy = load_or_train_classifier("fashion-mnist", root / "checkpoints", root / "data",
                                                    torch.device("cpu"), progress=False, log=lines.append)
    return model, test_accuracy, lines, root


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path_factory, monkeypatch):
    """No test sees Inception weights a user may have in ~/.cache/torch: each starts from an empty TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory) -> Path:
    """A weights file in the layout of torch-fidelity's Inception-v3, holding its random initial weights: the
    real network and loading path at work, without the 91 MB download this machine cannot make."""
    import torch
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    with pytest.MonkeyPatch.context() as patch:  # build the network without reading any weights
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *args, **kwargs: None)
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def astronaut_photo() -> Path:
    """A real photograph with one frontal human face (scikit-image's astronaut.png, shipped in its wheel)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-image is not installed (pip install -e '.[test]')")
    return Path(spec.submodule_search_locations[0]) / "data" / "astronaut.png"
