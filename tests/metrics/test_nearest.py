"""The memorization check: exact nearest neighbours, copying detected, a real run that does not copy."""

import json

import pytest
import torch

from dcgan.cli import main
from dcgan.data.cache import load_image_data
from dcgan.metrics.nearest import compare_in_space, nearest, nearest_neighbours
from dcgan.models.runs import RunReference


def brute_force(queries, reference, exclude_self=False):
    distances = torch.cdist(queries.double(), reference.double())
    if exclude_self:
        distances[range(len(queries)), range(len(queries))] = float("inf")
    return distances.min(dim=1)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbours_in_chunks_match_brute_force(exclude_self):
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(1000, 12, generator=generator)
    queries = reference[:40] + 0.01 * torch.randn(40, 12, generator=generator) if exclude_self else \
        torch.randn(40, 12, generator=generator)
    distance, index = nearest_neighbours(queries, reference.split(128), exclude_self)
    expected_distance, expected_index = brute_force(queries, reference, exclude_self)
    assert torch.equal(index, expected_index)
    assert torch.allclose(distance.double(), expected_distance, atol=1e-4)
    if exclude_self:
        assert not torch.equal(index, torch.arange(40))  # nobody matched itself


def test_a_copying_generator_is_flagged_and_a_new_sample_is_not(fashion_mnist_available, tmp_path):
    data = load_image_data("fashion-mnist", 32, 1, tmp_path, progress=False)
    train = data.sample(4000, seed=0).flatten(1)
    held_out = load_image_data("fashion-mnist", 32, 1, tmp_path, split="test", progress=False).sample(300, 0).flatten(1)
    copies = train[:300] + 0.02 * torch.randn(300, train.shape[1], generator=torch.Generator().manual_seed(0))
    copying, _ = compare_in_space(copies, held_out, lambda: train.split(1000), real_is_train=False)
    honest, _ = compare_in_space(held_out.flip(0), held_out, lambda: train.split(1000), real_is_train=False)
    assert copying["median_ratio"] < 0.2 and copying["share_closer_than_baseline_p01"] > 0.95
    assert 0.8 < honest["median_ratio"] < 1.25 and honest["share_closer_than_baseline_p01"] < 0.05


@pytest.mark.slow
def test_nearest_on_a_real_run_writes_the_figure_and_statistics(fashion_run, tiny_classifier, capsys):
    _, _, _, root = tiny_classifier
    where = dict(checkpoints_dir=str(root / "checkpoints"), data_dir=str(root / "data"),
                 samples_dir=str(root / "samples"))  # a checkpoint never chooses a folder: every one is named
    result = nearest(RunReference("fm", device="cpu", **where), n=300, features="classifier", progress=False,
                     log=lambda line: None)
    saved = json.loads((root / "checkpoints" / "fm" / "nearest_002.json").read_text())
    assert saved["baseline"] == "test images" and saved["n_train"] == 64 * 150
    for space in ("feature", "pixel"):
        numbers = saved[space]
        assert numbers["median_ratio"] == pytest.approx(result[space]["median_ratio"])
        assert numbers["baseline"]["median"] > 0
        assert numbers["median_ratio"] > 0.9  # 300 steps of training: nothing copied
    assert saved["features"].startswith("Fashion-MNIST classifier")
    assert (root / "samples" / "fm" / "nearest.png").stat().st_size > 10_000
    code = main(["nearest", "--run", "fm", "--n", "300", "--features", "classifier", "--device", "cpu",
                 "--no-progress", *[item for key, value in where.items() for item in (f"--{key.replace('_', '-')}",
                                                                                     value)]])
    out = capsys.readouterr().out
    assert code == 0 and "pixels (RMS)" in out and f"{saved['pixel']['median_ratio']:.2f}" in out


def test_unlabelled_data_without_inception_falls_back_to_pixels(small_config, tmp_path):
    from dcgan import train

    train(small_config(epochs=1, limit=64), log=lambda line: None)
    lines = []
    result = nearest(RunReference("test", checkpoints_dir=str(tmp_path / "checkpoints"),
                                  data_dir=str(tmp_path / "data"), device="cpu"), progress=False, log=lines.append)
    assert "feature" not in result and result["pixel"]["baseline"]["median"] > 0
    assert result["baseline"].startswith("training images") and "pixel space only" in lines[0]
    assert main(["nearest", "--run", "test", "--features", "classifier", "--checkpoints-dir",
                 str(tmp_path / "checkpoints"), "--data-dir", str(tmp_path / "data")]) == 2
