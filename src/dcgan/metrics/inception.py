"""Inception-v3 pool features (2048-d): the standard FID feature space, computed by torch-fidelity's network
(the TensorFlow FID weights, TF1-style bilinear resize to 299x299), as torchmetrics and torch-fidelity do.

The weights file is looked for in --inception-weights, then where torch-fidelity downloads it
($TORCH_HOME/hub/checkpoints/). It is always read with weights_only=True.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from ..data.transforms import to_uint8
from ..errors import UserError, first_line

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
LABEL = "Inception-v3 pool3, 2048-d"


def default_weights_path() -> Path:
    """Where torch-fidelity keeps the weights: $TORCH_HOME/hub/checkpoints/ (~/.cache/torch/hub/checkpoints/)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def how_to_get_weights() -> str:
    return (f"download {WEIGHTS_URL} into {default_weights_path().parent}/ "
            f"or pass --inception-weights PATH")


def find_weights(explicit: str = "") -> Path | None:
    """The weights file on disk: `explicit` (which must exist), else the default place, else None."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UserError(f"--inception-weights {explicit}: no such file ({how_to_get_weights()})")
        return path
    path = default_weights_path()
    return path if path.is_file() else None


def download_weights() -> Path:
    """Fetch the weights into the default place (a temporary file renamed at the end), or say how to."""
    target = default_weights_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, str(target), progress=True)
    except Exception as error:
        raise UserError(f"Inception weights {WEIGHTS_FILE} are not on disk and could not be downloaded "
                        f"({first_line(error)}): {how_to_get_weights()}") from None
    return target


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in `path`, read without running any code the file might carry."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"{path} is not a usable Inception weights file ({first_line(error)}): "
                        f"{how_to_get_weights()}") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UserError(f"{path} holds no state dict of tensors: {how_to_get_weights()}")
    return state


def to_inception_input(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], (N, 1 or 3, H, W) -> uint8 RGB (N, 3, H, W), the input torch-fidelity expects."""
    pixels = to_uint8(images)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


class InceptionFeatures(nn.Module):
    num_features = 2048  # torchmetrics reads this
    batch_size = 50  # images per forward pass: 299x299 activations are large

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        # torch-fidelity reads its weights file with a full unpickler: hand it bytes written here from plain tensors
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        buffer.seek(0)
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                   feature_extractor_weights_path=buffer)
        except RuntimeError as error:  # missing or unexpected keys, wrong shapes
            raise UserError(f"the weights do not fit Inception-v3 ({first_line(error)}): "
                            f"{how_to_get_weights()}") from None

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # images in [-1, 1]: (N, C, H, W) -> features (N, 2048), class probabilities (N, 1008)
        features, logits = self.net(to_inception_input(images))
        return features, logits.softmax(dim=1)  # the unbiased logits, as torch-fidelity's Inception Score takes them

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.outputs(images)[0]


def load_inception(weights: Path, device: torch.device) -> InceptionFeatures:
    return InceptionFeatures(read_weights(weights)).to(device).eval()


def inception_missing_message() -> str:
    return f"Inception weights {WEIGHTS_FILE} are not on disk: {how_to_get_weights()}"
