"""Training history: rows of losses and D outputs, every N steps and every epoch, as a list and a CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

COLUMNS = ("kind", "epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "seconds", "images_per_s", "fid")
# fid: on epoch rows measured by --eval-every, empty elsewhere
METRICS = ("loss_D", "loss_G", "D_x", "D_G_z")  # D_x = mean D(x), D_G_z = mean D(G(z)), as probabilities


class RunningMeans:
    """Sums the step metrics on their device, so a step needs no host sync; read every N steps."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(len(METRICS), device=device)
        self.count = 0

    def add(self, metrics: torch.Tensor) -> None:
        self.sums += metrics
        self.count += 1

    def pop(self) -> list[float]:
        """The means since the last pop (one host sync), then start again."""
        means = (self.sums / max(self.count, 1)).tolist()
        self.sums.zero_()
        self.count = 0
        return means


def history_row(kind: str, epoch: int, step: int, means: list[float], seconds: float, images: int) -> dict:
    row = {"kind": kind, "epoch": epoch, "step": step, **dict(zip(METRICS, means))}
    row.update(seconds=seconds, images_per_s=images / seconds if seconds > 0 else 0.0)
    return row


def history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})
    return out.getvalue()


def read_history_csv(path: Path) -> list[dict]:
    """history.csv back as rows with numbers (epoch and step as int, the rest float; empty cells left out)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    typed = []
    for row in rows:
        typed.append({key: value if key == "kind" else (int(value) if key in ("epoch", "step") else float(value))
                      for key, value in row.items() if value != ""})
    return typed
