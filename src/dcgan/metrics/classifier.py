"""A small CNN trained on a labelled dataset with a test split (Fashion-MNIST, MNIST) whose penultimate layer gives
features for FID, KID and precision/recall where Inception's weights are not available, and whose head gives class
probabilities. Trained once, then cached in checkpoints/_classifiers/. Its numbers are labelled
"(<dataset> classifier)": they are not Inception FID.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.cache import load_image_data
from ..data.datasets import classifier_names, has_classifier
from ..data.sources import named
from ..data.transforms import to_signed
from ..errors import UserError, first_line
from ..files import atomic_write_bytes
from ..progress import progress_bar

SIZE = 32  # every image is brought to 32x32 grayscale before the classifier sees it
FORMAT_VERSION = 1
BATCH = 128
TIMED_BATCHES = 20  # the first batches, timed to say how long the whole training will take


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] of any size and channel count -> (N, 1, 32, 32) grayscale."""
    gray = images.float().mean(dim=1, keepdim=True)
    if gray.shape[-1] != SIZE:
        gray = F.interpolate(gray, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    return gray


class FeatureClassifier(nn.Module):
    num_features = 128  # torchmetrics reads this

    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True), nn.MaxPool2d(2),  # 32 x 16 x 16
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(True), nn.MaxPool2d(2),  # 64 x 8 x 8
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(True), nn.MaxPool2d(2),  # 128 x 4 x 4
            nn.Flatten(), nn.Linear(128 * 16, self.num_features), nn.ReLU(True),  # (128) features
        )
        self.head = nn.Linear(self.num_features, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        # images in [-1, 1]: (N, C, S, S) -> (N, 128)
        return self.body(to_classifier_input(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # images in [-1, 1]: (N, C, S, S) -> features (N, 128), class probabilities (N, classes)
        features = self.features(images)
        return features, self.head(features).softmax(dim=1)


def classifier_file(dataset: str, checkpoints_root: Path) -> Path:
    return checkpoints_root / "_classifiers" / f"{dataset}-{SIZE}px.pt"


@torch.no_grad()
def accuracy(model: FeatureClassifier, images, labels, device: torch.device, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch):
        chunk = to_signed(torch.tensor(images[start:start + batch])).to(device)
        predicted = model(chunk).argmax(1).cpu()
        correct += (predicted == torch.from_numpy(labels[start:start + batch])).sum().item()
    return correct / len(labels)


def train_classifier(dataset: str, data_root: Path, device: torch.device, epochs: int = 4, seed: int = 0,
                     progress: bool = True, log=None) -> tuple[FeatureClassifier, float]:
    """Train on the dataset's training split; returns the model and its test-split accuracy. With `log`, the first
    TIMED_BATCHES batches are timed first and the whole training's duration at their speed is said."""
    train_set = load_image_data(dataset, SIZE, 1, data_root, progress=progress)
    test_set = load_image_data(dataset, SIZE, 1, data_root, split="test", progress=progress)
    torch.manual_seed(seed)
    model = FeatureClassifier(len(named(dataset).classes)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order_rng = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(train_set.labels)

    def fit(indices: torch.Tensor) -> None:
        batch = to_signed(torch.from_numpy(train_set.images[indices.numpy()])).to(device)
        loss = F.cross_entropy(model(batch), labels[indices].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    per_epoch = math.ceil(len(train_set) / BATCH)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=order_rng).split(BATCH)
        if epoch == 0 and log is not None:
            timed, order = order[:TIMED_BATCHES], order[TIMED_BATCHES:]
            started = time.perf_counter()
            for indices in timed:
                fit(indices)
            seconds = (time.perf_counter() - started) / len(timed) * epochs * per_epoch
            log(f"training the classifier: {epochs} x {per_epoch:,} batches of {BATCH} images, {duration(seconds)} "
                f"at the speed of its first {len(timed)} batches ({torch.get_num_threads()} threads on {device})")
        for indices in progress_bar(order, desc=f"classifier epoch {epoch + 1}/{epochs}", disable=not progress,
                                    initial=per_epoch - len(order), total=per_epoch):
            fit(indices)
    return model.eval(), accuracy(model, test_set.images, test_set.labels, device)


def duration(seconds: float) -> str:
    """"about 40 s", "about 6 minutes"."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} minutes"


def load_or_train_classifier(dataset: str, checkpoints_root: Path, data_root: Path, device: torch.device,
                             progress: bool = True, log=print, why: str = "") -> tuple[FeatureClassifier, float]:
    """The cached classifier for `dataset`, trained first when there is none; before it trains, `log` hears `why`
    it is needed (the caller's reason), where it will be cached and, after its first batches, how long it takes."""
    if not has_classifier(dataset):
        raise UserError(f"no feature extractor for '{dataset}': classifier features need a labelled dataset "
                        f"({classifier_names()})")
    spec, path = named(dataset), classifier_file(dataset, checkpoints_root)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = FeatureClassifier(len(spec.classes))
            model.load_state_dict(saved["model"])
            if not all(torch.isfinite(value).all() for value in model.state_dict().values()
                       if value.is_floating_point()):
                raise ValueError("its weights are not all finite")
            return model.to(device).eval(), float(saved["accuracy"])
        except Exception as error:
            log(f"retraining the {dataset} classifier: {path} is unreadable ({first_line(error)})")
    log(f"{why or f'the features of a small classifier of {spec.title} are needed'}: it is trained now, once, and "
        f"cached at {path}")
    started = time.perf_counter()
    model, test_accuracy = train_classifier(dataset, data_root, device, progress=progress, log=log)
    log(f"trained the {dataset} feature classifier in {time.perf_counter() - started:.0f} s: "
        f"test accuracy {test_accuracy:.4f}; saved to {path}")
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "model": model.state_dict(), "accuracy": test_accuracy,
                "dataset": dataset}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return model, test_accuracy
