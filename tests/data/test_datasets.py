"""The dataset table: each registered dataset's spec is consistent and is what every text and lookup asks."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan import TrainConfig
from dcgan.data.cache import load_image_data
from dcgan.data.datasets import Dataset, classifier_names, labelled_names, specs
from dcgan.data.faces import PACKAGES, faces_for_dataset
from dcgan.data.sources import NamedFolder, data_folder, resolve_source
from dcgan.errors import SettingError, UserError
from dcgan.registry import DATASETS

TOY = Dataset("toy-faces", "toy faces", NamedFolder(("toy/images", "toy"), "put the toy faces in data/toy/"),
              faces="anime")


@pytest.fixture
def toy_registered(monkeypatch):
    """A dataset added the way a new one is: its spec (above) and its line in DATASETS, nothing else."""
    monkeypatch.setitem(DATASETS.places, TOY.name, f"{__name__}:TOY")
    return TOY


def write_idx(folder, prefix, count):
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    header = bytes([0, 0, 8, 3, 0, 0, 0, count, 0, 0, 0, 28, 0, 0, 0, 28])
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, count]) + bytes(range(count)))


@pytest.mark.parametrize("name", DATASETS.names)
def test_each_registered_spec_is_consistent(name):
    spec = DATASETS.spec(name)
    assert isinstance(spec, Dataset) and spec.name == name and spec.title
    assert isinstance(spec.classes, tuple) and all(isinstance(label, str) for label in spec.classes)
    assert len(set(spec.classes)) == len(spec.classes)
    assert spec.test_split is spec.source.test_split
    assert spec.has_classifier == (bool(spec.classes) and spec.test_split)
    assert spec.faces is None or spec.faces in PACKAGES
    assert faces_for_dataset(name) == spec.faces


@pytest.mark.parametrize("spec", [spec for spec in specs() if spec.test_split], ids=lambda spec: spec.name)
def test_datasets_with_a_test_split_read_both_splits_with_their_classes(spec, tmp_path):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(tmp_path / spec.name, prefix, 5)
        source = resolve_source(spec.name, tmp_path, download=False, split=split)
        assert source.classes == spec.classes and split in source.description
        assert len(source.labels()) == 5
    assert data_folder(spec.name, tmp_path) == tmp_path / spec.name


def test_drawn_data_has_the_classes_of_its_spec_and_no_test_split(tmp_path):
    spec = DATASETS.spec("synthetic")
    assert resolve_source(spec.name, tmp_path).classes == spec.classes
    with pytest.raises(UserError, match="synthetic shapes has no test split"):
        resolve_source(spec.name, tmp_path, split="test")


def test_the_texts_name_what_the_specs_say():
    data_help = next(field for field in dataclasses.fields(TrainConfig) if field.name == "data").metadata["help"]
    with pytest.raises(SettingError) as empty:
        TrainConfig(data=" ").validate()
    with pytest.raises(UserError) as unknown:
        resolve_source("no-such-set", Path("/nonexistent"))
    for name in DATASETS.names:
        assert name in data_help and name in str(empty.value) and name in str(unknown.value)
    assert "folder of images" in data_help
    assert labelled_names().split(", ") == [spec.name for spec in specs() if spec.classes]
    assert classifier_names().split(", ") == [spec.name for spec in specs() if spec.has_classifier]


def test_conditional_on_unlabelled_data_names_the_labelled_datasets(small_config, tmp_path):
    from dcgan import train

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(40):
        Image.new("RGB", (32, 32), (i * 6, 0, 0)).save(folder / f"{i}.png")
    with pytest.raises(UserError, match=f"needs a labelled dataset \\({labelled_names()}\\)"):
        train(small_config(data=str(folder), conditional=True), log=lambda line: None)


def test_a_new_dataset_takes_its_spec_and_its_registry_line(toy_registered, tmp_path):
    with pytest.raises(UserError, match="toy-faces not found in .*: put the toy faces in data/toy/"):
        load_image_data("toy-faces", 32, 0, tmp_path, progress=False)
    assert data_folder("toy-faces", tmp_path) is None
    (tmp_path / "toy").mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 0, 0)).save(tmp_path / "toy" / f"{i}.png")
    data = load_image_data("toy-faces", 32, 0, tmp_path, progress=False)
    assert len(data) == 3 and data.labels is None
    assert data_folder("toy-faces", tmp_path) == tmp_path / "toy"
    assert faces_for_dataset("toy-faces") == "anime"
    assert "toy-faces" not in labelled_names() and "toy-faces" not in classifier_names()
    with pytest.raises(UserError, match="unknown dataset 'nope': use one of .*toy-faces"):
        resolve_source("nope", tmp_path)
