"""Every number of `evaluate` comes with its scale: real against real in the same features, the recorded runs of
the same space, spreads only where subsets differ, and a word before the feature classifier trains."""

import json

import torch

from dcgan.data.cache import load_image_data
from dcgan.metrics import classifier as classifier_module
from dcgan.metrics.evaluate import evaluate, result_table
from dcgan.metrics.features import compare_features, extract, feature_model, other_real_images
from dcgan.metrics.inception_score import INCEPTION_SCORE
from dcgan.metrics.kid import KID, SUBSET_SIZE
from dcgan.metrics.metric import Measured
from dcgan.metrics.recorded import FASHION_CLASSIFIER
from dcgan.models.runs import RunReference

N = 300  # images a side: fewer than a KID subset takes


def block(result: dict, label: str) -> list[str]:
    """The metric line labelled `label` and its reference lines (indented under it)."""
    lines = result_table(result).splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"  {label}"))
    under = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        under.append(line)
    return [lines[start], *under]


def saved_result(**changes) -> dict:
    """A result as eval_NNN.json holds it (the README's run, measured in the docs' classifier space)."""
    result = {"run": "fm32", "epoch": 12, "step": 11244, "data": "fashion-mnist", "image_size": 32,
              "features": FASHION_CLASSIFIER, "fid": 24.14, "kid_mean": 13.18, "kid_std": 5.17, "precision": 0.69,
              "recall": 0.55, "n_real": 10000, "n_fake": 10000, "seconds": 25.0}
    return {**result, **changes}


def test_kid_shows_its_spread_only_when_subsets_differ_and_says_its_scale():
    few = KID.rows({"kid_mean": 473.65, "kid_std": 0.0}, Measured("space", SUBSET_SIZE))
    many = KID.rows({"kid_mean": 13.18, "kid_std": 5.17}, Measured("space", SUBSET_SIZE + 1))
    [(label, value)] = few
    assert "+-" not in value and "one subset" in value and "1,000" in value
    assert "not x 1000" in label
    [(_, value)] = many
    assert "13.18 +- 5.17 (sd over 10 subsets of 1,000)" in value


def test_the_inception_score_shows_its_spread_only_over_splits_of_several_images():
    [(_, one_each)] = INCEPTION_SCORE.rows({"inception_score": 1.0, "inception_score_std": 0.0}, Measured("s", 10))
    [(_, splits)] = INCEPTION_SCORE.rows({"inception_score": 2.5, "inception_score_std": 0.1}, Measured("s", 200))
    assert "+-" not in one_each and "no spread" in one_each
    assert "2.500 +- 0.100 (sd over 10 splits of 20)" in splits


def test_the_readme_run_is_shown_only_in_its_own_feature_space_dataset_and_size():
    readme = "README's run fm32, n = 10,000"
    fid = block(saved_result(), "FID")
    assert any(line.startswith(f"    {readme}") and line.endswith("24.140") for line in fid)
    kid = block(saved_result(), "KID")
    assert any(readme in line and "sd over 10 subsets of 1,000" in line for line in kid)
    for other in ({"features": "Fashion-MNIST classifier (test accuracy 0.8600)"}, {"image_size": 64},
                  {"data": "mnist"}):
        assert readme not in result_table(saved_result(**other))
    older = saved_result()
    del older["data"], older["image_size"]  # an eval_NNN.json written before results named their dataset
    assert readme not in result_table(older) and "real vs real" not in result_table(older)


def test_other_real_images_are_disjoint_from_the_real_set(small_config, fashion_mnist_available, tmp_path):
    from dcgan.data.cache import real_images_for

    cfg = small_config(data="fashion-mnist", data_dir=str(tmp_path / "data"))
    first, second = real_images_for(cfg, 50, 0), other_real_images(cfg, 50, 0)
    both = load_image_data("fashion-mnist", 32, 1, tmp_path / "data", progress=False).sample(100, 0)

    def images(tensor):
        return sorted(bytes(image.numpy().tobytes()) for image in tensor)

    assert len(second) == 50
    assert images(torch.cat([first, second])) == images(both)  # the next 50 of the same order: none twice


def test_evaluate_measures_real_against_real_in_the_same_features(tiny_classifier, small_config):
    from dcgan import train
    from dcgan.data.cache import real_images_for

    model, _, _, root = tiny_classifier
    cfg = small_config(data="fashion-mnist", nz=16, ngf=8, ndf=8, limit=256, epochs=1, run="bad",
                       data_dir=str(root / "data"), checkpoints_dir=str(root / "checkpoints"))
    train(cfg, log=lambda line: None)  # 8 steps: a bad generator
    reference = RunReference("bad", checkpoints_dir=cfg.checkpoints_dir, data_dir=cfg.data_dir, device="cpu")
    result = evaluate(reference, n=N, progress=False, log=lambda line: None)

    saved = json.loads((root / "checkpoints" / "bad" / "eval_001.json").read_text())
    assert saved["real_vs_real_n"] == N and saved["real_vs_real_fid"] == result["real_vs_real_fid"]
    real = extract(model, real_images_for(cfg, N, 0, cfg.data_dir), torch.device("cpu"))
    others = extract(model, other_real_images(cfg, N, 0, cfg.data_dir), torch.device("cpu"))
    assert compare_features(real, others, ["fid"])["fid"] == result["real_vs_real_fid"]  # the same features
    assert result["real_vs_real_fid"] * 10 < result["fid"]  # small against a bad generator's
    assert result["real_vs_real_precision"] > result["precision"]

    fid = block(result, "FID")
    assert fid[1].startswith(f"    real vs real, n = {N}") and fid[1].endswith(f"{result['real_vs_real_fid']:.3f}")
    for line in block(result, "KID"):  # 300 images: one KID subset, no spread
        assert "+-" not in line and "one subset" in line
    assert "what a generator drawing the data itself would score" in result_table(result)
    assert "README's run" not in result_table(result)  # the tiny classifier is not the docs' feature space


def test_the_classifier_says_why_and_how_long_before_it_trains(fashion_mnist_available, tmp_path, monkeypatch):
    load = classifier_module.load_image_data
    monkeypatch.setattr(classifier_module, "load_image_data",
                        lambda *args, **kwargs: load(*args, **kwargs).head(3000))  # 24 batches an epoch
    batches = []
    cross_entropy = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy",
                        lambda *args, **kwargs: batches.append(1) or cross_entropy(*args, **kwargs))
    said = []
    feature_model("auto", "fashion-mnist", tmp_path / "checkpoints", tmp_path / "data", torch.device("cpu"), False,
                  lambda line: said.append((len(batches), line)))  # no Inception weights here (empty TORCH_HOME)
    (before, why), (timed, how_long), (_, done) = said
    assert before == 0 and "Inception-v3's weights are not on this machine" in why
    assert str(tmp_path / "checkpoints" / "_classifiers" / "fashion-mnist-32px.pt") in why
    assert timed == classifier_module.TIMED_BATCHES < len(batches)
    assert "4 x 24 batches" in how_long and "at the speed of its first 20 batches" in how_long
    assert "about" in how_long and "trained the fashion-mnist feature classifier" in done
