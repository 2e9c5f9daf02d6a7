"""Evaluation on real Fashion-MNIST with the classifier features: the classifier, the orderings, the command."""

import json
import re

import pytest
import torch

from dcgan.cli import main
from dcgan.data.cache import load_image_data
from dcgan.metrics.classifier import classifier_file, load_or_train_classifier
from dcgan.metrics.evaluate import evaluate
from dcgan.metrics.features import compare_features, extract
from dcgan.models.dcgan import build_models
from dcgan.models.runs import RunReference
from dcgan.pictures.sampling import generate, noise_for

N = 2000


@pytest.fixture
def classifier(tiny_classifier):
    return tiny_classifier


@pytest.mark.slow
def test_the_classifier_is_accurate_cached_and_reported(fashion_classifier):
    model, test_accuracy, lines, root = fashion_classifier
    assert test_accuracy >= 0.90
    assert "test accuracy" in lines[-1]
    path = classifier_file("fashion-mnist", root / "checkpoints")
    assert path.is_file()
    again, cached_accuracy = load_or_train_classifier("fashion-mnist", root / "checkpoints", root / "data",
                                                      torch.device("cpu"), progress=False, log=lambda line: None)
    assert cached_accuracy == test_accuracy
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.slow
def test_fid_orders_real_data_trained_and_untrained_generators(classifier, fashion_run):
    model, _, _, root = classifier
    state, _ = fashion_run
    device = torch.device("cpu")
    train_images = load_image_data("fashion-mnist", 32, 1, root / "data", progress=False).sample(N, seed=0)
    test_images = load_image_data("fashion-mnist", 32, 1, root / "data", split="test", progress=False).sample(N, 0)
    test_features = extract(model, test_images, device)

    def fid_against_test(images):
        return compare_features(test_features, extract(model, images, device))["fid"]

    floor = fid_against_test(train_images)
    noise = fid_against_test(torch.rand(N, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    torch.manual_seed(0)
    untrained = fid_against_test(generate(build_models(32, 1, 100, 64, 64)[0], noise_for(N, 100, 1)))
    trained = fid_against_test(generate(state.nets.generator, noise_for(N, 100, 1)))
    print(f"classifier FID vs test: train {floor:.2f}, trained G {trained:.2f}, untrained G {untrained:.2f}, "
          f"noise {noise:.2f}")
    assert floor < trained < min(untrained, noise)
    assert floor * 5 < trained and trained * 2 < min(untrained, noise)


@pytest.mark.slow
def test_evaluate_writes_the_numbers_and_the_command_prints_them(classifier, fashion_run, capsys):
    _, accuracy, _, root = classifier
    result = evaluate(RunReference("fm", checkpoints_dir=str(root / "checkpoints"), data_dir=str(root / "data"),
                                   device="cpu"), n=500, progress=False, log=lambda line: None)
    saved = json.loads((root / "checkpoints" / "fm" / "eval_002.json").read_text())
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "features", "n_real", "n_fake", "seconds"):
        assert key in saved
    assert saved["fid"] == result["fid"] and saved["n_real"] == saved["n_fake"] == 500
    assert saved["features"] == f"Fashion-MNIST classifier (test accuracy {accuracy:.4f})"  # the cached one
    assert 0 <= saved["precision"] <= 1 and 0 <= saved["recall"] <= 1 and saved["fid"] > 0
    code = main(["evaluate", "--run", "fm", "--n", "500", "--checkpoints-dir", str(root / "checkpoints"),
                 "--data-dir", str(root / "data"), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "FID" in out and "Fashion-MNIST classifier" in out and "eval_002.json" in out
    assert f"{saved['fid']:.3f}" in out  # same seed, same numbers
    assert re.search(rf"real vs real, n = 500 +{saved['real_vs_real_fid']:.3f}\n", out)  # FID's scale, beneath it
    assert "KID (MMD^2, not x 1000)" in out
    assert "+-" not in out  # 500 images: one KID subset, no spread


def test_evaluate_refusals(tmp_path, capsys, small_config):
    assert main(["evaluate", "--run", "ghost", "--checkpoints-dir", str(tmp_path)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    from dcgan import train

    train(small_config(epochs=1), log=lambda line: None)  # synthetic shapes: no labels
    assert main(["evaluate", "--run", "test", "--checkpoints-dir", str(tmp_path / "checkpoints"),
                 "--data-dir", str(tmp_path / "data"), "--n", "100"]) == 2
    assert "classifier features need a labelled dataset" in capsys.readouterr().err


def test_eval_every_adds_fid_to_history_and_keeps_the_best_checkpoint(classifier, small_config):
    from dcgan import train
    from dcgan.models.checkpoint import load_checkpoint
    from dcgan.training.history import read_history_csv

    _, _, _, root = classifier
    cfg = small_config(data="fashion-mnist", nz=100, ngf=16, ndf=16, limit=640, epochs=2, eval_every=1, eval_n=200,
                       data_dir=str(root / "data"), checkpoints_dir=str(root / "checkpoints"), run="evaluated")
    lines = []
    state = train(cfg, log=lines.append)
    folder = root / "checkpoints" / "evaluated"
    epochs = [row for row in read_history_csv(folder / "history.csv") if row["kind"] == "epoch"]
    assert all("fid" in row for row in epochs)
    assert all("fid" not in row for row in read_history_csv(folder / "history.csv") if row["kind"] == "step")
    for epoch in (1, 2):
        measured = json.loads((folder / f"eval_{epoch:03d}.json").read_text())["fid"]
        assert measured == pytest.approx(epochs[epoch - 1]["fid"], rel=1e-5)  # the CSV keeps 6 digits
    best_epoch = 1 + min(range(2), key=lambda i: epochs[i]["fid"])
    assert load_checkpoint(folder / "best.pt")["epoch"] == best_epoch
    assert (folder / "best.pt").read_bytes() == (folder / f"epoch_{best_epoch:03d}.pt").read_bytes()
    assert any("FID" in line for line in lines)
    resumed = train(small_config(**{**cfg.__dict__, "epochs": 3, "resume": True}), log=lambda line: None)
    measured = [row["fid"] for row in resumed.history if row["kind"] == "epoch"]
    assert len(measured) == 3
    assert load_checkpoint(folder / "best.pt")["epoch"] == 1 + measured.index(min(measured))
    assert state.setup.evaluator is not None


def test_eval_every_on_unlabelled_data_is_refused_before_training(small_config, tmp_path):
    from dcgan import train
    from dcgan.errors import UserError

    with pytest.raises(UserError, match="labelled dataset"):
        train(small_config(eval_every=1), log=lambda line: None)
    assert not (tmp_path / "checkpoints" / "test" / "epoch_001.pt").exists()
    assert not (tmp_path / "samples" / "test" / "real.png").exists()
    train(small_config(epochs=1), log=lambda line: None)
    with pytest.raises(UserError, match="labelled dataset"):  # --overwrite deletes nothing when it then fails
        train(small_config(eval_every=1, overwrite=True), log=lambda line: None)
    assert (tmp_path / "checkpoints" / "test" / "epoch_001.pt").is_file()
