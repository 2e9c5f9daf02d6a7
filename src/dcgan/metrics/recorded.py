"""Numbers recorded for runs the README shows, that anyone can repeat: `evaluate`'s table puts them beside a new
run's as reference points, only where they were measured in the same feature space on the same dataset and size."""

from __future__ import annotations

from dataclasses import dataclass

FASHION_CLASSIFIER = "Fashion-MNIST classifier (test accuracy 0.9130)"  # the cached classifier of docs/evaluation.md


@dataclass(frozen=True)
class Recorded:
    """One run's evaluation as the docs record it."""

    label: str  # which run: "README's run fm32"
    data: str  # the dataset it trained on, and its image size
    image_size: int
    features: str  # the feature space, as the result's "features" names it (the classifier with its accuracy)
    n: int  # images a side
    values: dict[str, float]  # by the metrics' value names: {"fid": 24.14, ...}


RECORDED = (
    # the README's set-up command (--preset recommended --epochs 12), then `python -m dcgan evaluate --run fm32`:
    # docs/benchmarks.md
    Recorded("README's run fm32", "fashion-mnist", 32, FASHION_CLASSIFIER, 10000,
             {"fid": 24.1402, "kid_mean": 13.1848, "kid_std": 5.1737, "precision": 0.6903, "recall": 0.5464}),
)


def recorded_for(result: dict) -> list[Recorded]:
    """The recorded runs measured in the result's feature space, dataset and image size (none for an older result
    that does not name its dataset)."""
    return [run for run in RECORDED if run.features == result["features"] and run.data == result.get("data")
            and run.image_size == result.get("image_size")]
