"""Training history: rows of losses and D outputs, every N steps and every epoch, as a list and a CSV."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import torch

COLUMNS = ("kind", "epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "seconds", "images_per_s", "fid", "check",
           "difference")
# fid: on epoch rows measured by --eval-every, empty elsewhere. check, difference: on graph_check rows (CUDA
# graphs' self-check, training/graphs.py), "match" or "differs" and the largest difference found
TEXT_COLUMNS = ("kind", "check")
METRICS = ("loss_D", "loss_G", "D_x", "D_G_z")  # D_x = mean D(x), D_G_z = mean D(G(z)), as probabilities


class RunningMeans:
    """Sums the step metrics on their device, so a step needs no host sync; read every N steps. Also times
    the steps it holds (a resumed run carries the sums and seconds of its unfinished epoch and log window)."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(len(METRICS), device=device)
        self.count = 0
        self.seconds_before = 0.0  # time spent on these steps before a resume
        self.started = time.perf_counter()

    def add(self, metrics: torch.Tensor) -> None:
        self.sums += metrics
        self.count += 1

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def pop(self, mean_over_ranks=None) -> tuple[list[float], float, int]:
        """(means, seconds, steps) since the last pop (one host sync), then start again. `mean_over_ranks`
        averages the sums over the processes of a distributed run."""
        sums = mean_over_ranks(self.sums) if mean_over_ranks else self.sums
        result = ((sums / max(self.count, 1)).tolist(), self.seconds, self.count)
        self.sums.zero_()
        self.count, self.seconds_before, self.started = 0, 0.0, time.perf_counter()
        return result

    def saved(self, mean_over_ranks=None) -> dict:
        sums = mean_over_ranks(self.sums) if mean_over_ranks else self.sums
        return {"sums": sums.detach().cpu(), "count": self.count, "seconds": self.seconds}

    def restore(self, saved: dict) -> None:
        self.sums.copy_(saved["sums"])
        self.count, self.seconds_before = int(saved["count"]), float(saved["seconds"])
        self.started = time.perf_counter()


def history_row(kind: str, epoch: int, step: int, means: list[float], seconds: float, images: int) -> dict:
    row = {"kind": kind, "epoch": epoch, "step": step, **dict(zip(METRICS, means))}
    row.update(seconds=seconds, images_per_s=images / seconds if seconds > 0 else 0.0)
    return row


def graph_check_row(epoch: int, step: int, matches: bool, difference: float) -> dict:
    """The record of one self-check of the CUDA graphs (training/graphs.py): did the replay match the eager step,
    and the largest difference found."""
    return {"kind": "graph_check", "epoch": epoch, "step": step, "check": "match" if matches else "differs",
            "difference": difference}


def history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value) for key, value in row.items()})
    return out.getvalue()


def read_history_csv(path: Path) -> list[dict]:
    """history.csv back as rows with numbers (epoch and step as int, the words of TEXT_COLUMNS as they are, the rest
    float; empty cells left out)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    typed = []
    for row in rows:
        typed.append({key: value if key in TEXT_COLUMNS else (int(value) if key in ("epoch", "step") else float(value))
                      for key, value in row.items() if value != ""})
    return typed
