"""The metrics against independent references and constructed cases with known answers."""

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from dcgan import TrainConfig
from dcgan.errors import SettingError
from dcgan.metrics.evaluate import result_table
from dcgan.metrics.features import compare_features
from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.kid import kernel_distance
from dcgan.metrics.metric import FeatureSets, Metric
from dcgan.metrics.precision_recall import precision_recall
from dcgan.registry import METRICS


def reference_fid(real, fake):
    """The textbook formula with scipy's matrix square root."""
    real, fake = real.numpy().astype(np.float64), fake.numpy().astype(np.float64)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r + cov_f - 2 * root))


def reference_kid(real, fake):
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 on the whole sets."""
    x, y = real.numpy().astype(np.float64), fake.numpy().astype(np.float64)
    d, m = x.shape[1], x.shape[0]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


@pytest.mark.parametrize("shift", [0.0, 0.5, 3.0])
def test_fid_matches_the_scipy_reference(shift):
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(500, 16, generator=generator)
    fake = torch.randn(500, 16, generator=generator) * 1.3 + shift
    ours, reference = frechet_distance(real, fake), reference_fid(real, fake)
    assert ours == pytest.approx(reference, rel=1e-3, abs=1e-6)


def test_fid_of_a_pure_mean_shift_is_its_squared_length():
    real = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(real, real + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)


def test_kid_matches_the_reference_and_is_near_zero_for_the_same_distribution():
    generator = torch.Generator().manual_seed(2)
    real, fake = torch.randn(300, 10, generator=generator), torch.randn(300, 10, generator=generator) + 1.0
    mean, std = kernel_distance(real, fake, subsets=1, subset_size=300)
    assert mean == pytest.approx(reference_kid(real, fake), rel=1e-6)
    same_mean, _ = kernel_distance(real, torch.randn(300, 10, generator=generator), subsets=20, subset_size=100)
    assert abs(same_mean) < 0.05 * mean
    assert kernel_distance(real, fake, subsets=5, subset_size=100) == kernel_distance(real, fake, 5, 100)


def test_precision_and_recall_on_constructed_sets():
    grid = torch.stack(torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="ij"), -1).view(-1, 2)
    assert precision_recall(grid, grid.clone()) == (1.0, 1.0)
    far = grid + 100.0
    assert precision_recall(grid, far) == (0.0, 0.0)
    # generated points all inside the real manifold but covering only its left half
    left = grid[grid[:, 0] < 5] + 0.1
    precision, recall = precision_recall(grid, left)
    assert precision == 1.0
    assert 0.45 <= recall <= 0.65  # the right half is missed (the border column is reached by left balls)
    # half of the generated points are far away: precision halves, recall stays full
    mixed = torch.cat([grid + 0.1, grid + 100.0])
    assert precision_recall(grid, mixed)[0] == pytest.approx(0.5)


# --- metrics chosen by name (registry.py's METRICS, --eval-metrics)

def mean_top_probability(sets: FeatureSets) -> dict[str, float]:
    """A toy metric that reads the class probabilities, as an Inception Score would."""
    return {"toy_confidence": float(sets.fake_probabilities.max(dim=1).values.mean()),
            "toy_real_confidence": float(sets.real_probabilities.max(dim=1).values.mean())}


TOY = Metric(("toy_confidence", "toy_real_confidence"), mean_top_probability)


class TinyFeatures(torch.nn.Module):
    """A feature network with a classifier head, small enough for a test: 8 features, 3 classes."""

    def features(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)[:, :8]

    def outputs(self, images):
        features = self.features(images)
        return features, features[:, :3].softmax(dim=1)


@pytest.fixture
def tiny_evaluator(small_config, monkeypatch):
    """An Evaluator for a synthetic run, in TinyFeatures' space, and an untrained G of that run."""
    from dcgan.metrics import features
    from dcgan.models.parts import build_networks

    monkeypatch.setattr(features, "feature_model", lambda *args, **kwargs: (TinyFeatures(), "tiny features"))

    def build(metrics: str):
        cfg = small_config(eval_metrics=metrics, channels=3).validate()
        torch.manual_seed(0)
        generator = build_networks(cfg)[0]
        return features.Evaluator(cfg, 64, "auto", torch.device("cpu"), Path(cfg.checkpoints_dir),
                                  progress=False), generator
    return build


def test_the_default_metrics_are_the_four_with_the_numbers_of_their_functions():
    generator = torch.Generator().manual_seed(3)
    real, fake = torch.randn(200, 6, generator=generator), torch.randn(200, 6, generator=generator) + 0.5
    values = compare_features(real, fake)
    assert list(values) == ["fid", "kid_mean", "kid_std", "precision", "recall"]
    assert values["fid"] == frechet_distance(real, fake)
    assert (values["kid_mean"], values["kid_std"]) == kernel_distance(real, fake, 10, 1000)
    assert (values["precision"], values["recall"]) == precision_recall(real, fake)
    assert TrainConfig().metrics() == ["fid", "kid", "precision", "recall"]
    assert list(compare_features(real, fake, ["recall", "fid"])) == ["recall", "fid"]


def test_the_chosen_metrics_are_in_the_result_and_the_table(tiny_evaluator):
    evaluator, generator = tiny_evaluator("fid,recall")
    result = evaluator.measure(generator)
    assert {"fid", "recall"} <= set(result) and not {"precision", "kid_mean", "kid_std"} & set(result)
    assert result["features"] == "tiny features" and result["n_real"] == result["n_fake"] == 64
    evaluator, generator = tiny_evaluator("fid,kid,precision,recall")
    result = evaluator.measure(generator)
    assert {"fid", "kid_mean", "kid_std", "precision", "recall"} <= set(result)
    table = result_table({**result, "run": "test", "epoch": 1})
    assert all(label in table for label in ("FID (tiny features)", "KID", "precision (k=3)", "recall (k=3)"))


def test_an_unknown_metric_is_a_one_line_setting_error():
    with pytest.raises(SettingError, match="unknown --eval-metrics 'inception-score': use fid, kid, precision, "
                                           "recall, inception_score") as error:
        TrainConfig(eval_metrics="fid,inception-score").validate()
    assert error.value.setting == "eval_metrics" and "\n" not in str(error.value)
    with pytest.raises(SettingError, match="lacks fid"):
        TrainConfig(eval_metrics="kid").validate()
    with pytest.raises(SettingError, match="unknown --eval-metrics"):
        compare_features(torch.zeros(4, 2), torch.zeros(4, 2), ["nope"])


def test_a_registered_metric_shows_up_with_no_other_edit(tiny_evaluator, monkeypatch):
    monkeypatch.setitem(METRICS.places, "toy", f"{__name__}:TOY")
    evaluator, generator = tiny_evaluator("fid,toy")
    result = evaluator.measure(generator)
    assert 1 / 3 <= result["toy_confidence"] <= 1 and 1 / 3 <= result["toy_real_confidence"] <= 1
    assert "fid" in result and "precision" not in result
    assert "toy_confidence" in result_table({**result, "run": "test", "epoch": 1})


def test_the_inception_score_of_hand_made_probabilities():
    from dcgan.metrics.inception_score import inception_score

    confident = torch.eye(4).repeat(10, 1)  # every image sure of its class, the 4 classes evenly: IS = 4 per split
    unsure = torch.full((40, 4), 0.25)  # every image undecided: KL to the marginal 0, IS = 1
    one_class = torch.eye(4)[[0] * 40]  # sure, but all of one class: IS = 1
    assert inception_score(FeatureSets(torch.zeros(40, 2), torch.zeros(40, 2), None, confident)) == {
        "inception_score": pytest.approx(4.0), "inception_score_std": pytest.approx(0.0, abs=1e-9)}
    for probabilities in (unsure, one_class):
        values = inception_score(FeatureSets(torch.zeros(40, 2), torch.zeros(40, 2), None, probabilities))
        assert values["inception_score"] == pytest.approx(1.0)
    half = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]).repeat(20, 1)  # KL = log 2 each: IS = 2
    assert inception_score(FeatureSets(torch.zeros(40, 2), torch.zeros(40, 2), None, half))[
        "inception_score"] == pytest.approx(2.0)


def test_the_inception_score_needs_class_probabilities_and_is_chosen_by_name(tiny_evaluator):
    from dcgan.errors import UserError
    from dcgan.metrics.inception_score import inception_score

    with pytest.raises(UserError, match="needs class probabilities"):
        inception_score(FeatureSets(torch.zeros(4, 2), torch.zeros(4, 2)))
    evaluator, generator = tiny_evaluator("fid,inception_score")
    result = evaluator.measure(generator)
    assert 1.0 <= result["inception_score"] <= 3.0  # TinyFeatures' 3 classes bound it
    assert "Inception Score" in result_table({**result, "run": "test", "epoch": 1})
