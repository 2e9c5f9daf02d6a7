"""Shared fixtures: small configs that train in seconds on the CPU, and real Fashion-MNIST when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcgan import TrainConfig
from dcgan.sources import LABELLED, find_idx_files

FASHION_DEBIAN = LABELLED["fashion-mnist"][2]


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

    from dcgan.classifier import load_or_train_classifier

    _, root = fashion_run
    lines = []
    model, test_accuracy = load_or_train_classifier("fashion-mnist", root / "checkpoints", root / "data",
                                                    torch.device("cpu"), progress=False, log=lines.append)
    return model, test_accuracy, lines, root
