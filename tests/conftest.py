"""Shared fixtures: small configs that train in seconds on the CPU, real Fashion-MNIST when present, a real run on
it and classifiers of it."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from dcgan import TrainConfig
from dcgan.data.sources import find_idx_files
from dcgan.registry import DATASETS
from tests.helpers import quiet, tiny_config

FASHION_DEBIAN = DATASETS.spec("fashion-mnist").source.system_folder


@pytest.fixture
def small_config(tmp_path):
    """A function building a TrainConfig that trains in a second (helpers.tiny_settings), its files in tmp."""

    def build(**overrides) -> TrainConfig:
        return tiny_config(tmp_path, **overrides)

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
def fashion_root(fashion_mnist_available, tmp_path_factory) -> Path:
    """The folder of the shared Fashion-MNIST run and of the tiny classifier: data/, samples/, checkpoints/."""
    return tmp_path_factory.mktemp("fashion")


@pytest.fixture(scope="session")
def fashion_run(fashion_root):
    """A real 300-step run of the full-width 32x32 DCGAN on Fashion-MNIST, shared by the tests that need one."""
    from dcgan import train

    root = fashion_root
    cfg = TrainConfig(data="fashion-mnist", image_size=32, batch_size=64, limit=64 * 150, epochs=2, log_every=10,
                      run="fm", data_dir=str(root / "data"), samples_dir=str(root / "samples"),
                      checkpoints_dir=str(root / "checkpoints"), progress=False, device="cpu")
    return train(cfg, log=quiet), root


def classifier_in(root: Path, lines: list[str]):
    """load_or_train_classifier for Fashion-MNIST, cached in root/checkpoints, its data in root/data."""
    import torch

    from dcgan.metrics.classifier import load_or_train_classifier

    return load_or_train_classifier("fashion-mnist", root / "checkpoints", root / "data", torch.device("cpu"),
                                    progress=False, log=lines.append)


@pytest.fixture(scope="session")
def fashion_classifier(fashion_mnist_available, tmp_path_factory):
    """The real Fashion-MNIST feature classifier (4 epochs of 60,000 images), trained once into its own folder:
    for the test of its accuracy. Tests that only need a cached classifier take tiny_classifier."""
    root = tmp_path_factory.mktemp("classifier")
    lines = []
    model, test_accuracy = classifier_in(root, lines)
    return model, test_accuracy, lines, root


TINY_CLASSIFIER_IMAGES = 16384  # of each split (the test split has 10,000)


@pytest.fixture(scope="session")
def tiny_classifier(fashion_root):
    """A Fashion-MNIST feature classifier trained small by the real code (one epoch of the first 16,384 training
    images: about 86% test accuracy, in a fifteenth of the real one's time), cached where the real one would be:
    fashion_root/checkpoints. For the tests that need a cached classifier, not a good one."""
    from dcgan.metrics import classifier

    train_classifier, load_image_data = classifier.train_classifier, classifier.load_image_data
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier, "train_classifier", functools.partial(train_classifier, epochs=1))
        patch.setattr(classifier, "load_image_data",
                      lambda *args, **kwargs: load_image_data(*args, **kwargs).head(TINY_CLASSIFIER_IMAGES))
        model, test_accuracy = classifier_in(fashion_root, lines)
    assert "test accuracy" in lines[-1]  # trained here, not found cached
    return model, test_accuracy, lines, fashion_root


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
