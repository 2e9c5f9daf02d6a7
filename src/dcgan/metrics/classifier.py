"""A small CNN trained on a labelled dataset with a test split (Fashion-MNIST, MNIST) whose penultimate layer gives
features for FID, KID and precision/recall where Inception's weights are not available, and whose head gives class
probabilities. Trained once, then cached in checkpoints/_classifiers/. Its numbers are labelled
"(<dataset> classifier)": they are not Inception FID.
"""

from __future__ import annotations

import io
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
                     progress: bool = True) -> tuple[FeatureClassifier, float]:
    """Train on the dataset's training split; returns the model and its test-split accuracy."""
    train_set = load_image_data(dataset, SIZE, 1, data_root, progress=progress)
    test_set = load_image_data(dataset, SIZE, 1, data_root, split="test", progress=progress)
    torch.manual_seed(seed)
    model = FeatureClassifier(len(named(dataset).classes)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order_rng = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(train_set.labels)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=order_rng).split(128)
        for indices in progress_bar(order, desc=f"classifier epoch {epoch + 1}/{epochs}", disable=not progress):
            batch = to_signed(torch.from_numpy(train_set.images[indices.numpy()])).to(device)
            loss = F.cross_entropy(model(batch), labels[indices].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval(), accuracy(model, test_set.images, test_set.labels, device)


def load_or_train_classifier(dataset: str, checkpoints_root: Path, data_root: Path, device: torch.device,
                             progress: bool = True, log=print) -> tuple[FeatureClassifier, float]:
    """The cached classifier for `dataset`, trained first when there is none."""
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
    started = time.perf_counter()
    model, test_accuracy = train_classifier(dataset, data_root, device, progress=progress)
    log(f"trained the {dataset} feature classifier in {time.perf_counter() - started:.0f} s: "
        f"test accuracy {test_accuracy:.4f}; saved to {path}")
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, "model": model.state_dict(), "accuracy": test_accuracy,
                "dataset": dataset}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return model, test_accuracy
