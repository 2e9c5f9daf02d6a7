"""Training history: named statistics, summed on the device and read every N steps into rows, kept as a list and
written as history.csv; and the watch for non-finite ones.

The step, the loss and the networks report statistics by name (models/statistics.py); this module's STATISTICS
says how each one is shown: in the log line and the progress bar, in TensorBoard, and in which panel of
losses.png. A name it does not list is shown under its own name, in a panel of its own: a statistic a loss or a
network reports (each step), or the value of a registered metric (measured at the end of an epoch). Nothing else
needs an edit. The running means keep a count per name, so a statistic may be reported on some steps only (G's
steps), and a run resumes a checkpoint written before a statistic existed, or after one was dropped. The CSV's
header is the union of the rows' keys, in the order they first appear.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from matplotlib.figure import Figure
from torch import nn

from ..errors import UserError
from ..pictures.plots import Panel, curves_figure
from ..registry import LOSSES, METRICS

if TYPE_CHECKING:
    from ..models.losses import Loss

BOOKKEEPING = ("kind", "epoch", "step", "seconds")  # the columns every row has that are not measurements
TEXT_COLUMNS = ("kind", "check")  # columns holding words: the row's kind; a graph check's "match", "differs"...
RESERVED = (*BOOKKEEPING, *TEXT_COLUMNS, "images_per_s", "difference")  # no statistic may take these names
NONE_YET = 2**62  # the first bad step while every step was finite


@dataclass(frozen=True)
class Statistic:
    """How one named value of the history is shown."""

    label: str  # in the log line, the progress bar and the legends: "loss_D"
    tag: str  # TensorBoard's tag: "loss/D"
    panel: str = ""  # the losses.png panel that draws it; "" none
    digits: int = 3  # decimals in the log line and the progress bar
    measured: str = "step"  # "step": reported by every training step; "epoch": measured at the end of an epoch


STATISTICS = {
    "loss_D": Statistic("loss_D", "loss/D", "losses"),
    "loss_G": Statistic("loss_G", "loss/G", "losses"),
    "D_x": Statistic("D(x)", "D/real D(x)", "outputs", 2),  # D's mean output on real images (named by the loss)
    "D_G_z": Statistic("D(G(z))", "D/fake D(G(z))", "outputs", 2),  # and on generated ones
    "images_per_s": Statistic("img/s", "speed/images_per_s", digits=0, measured="speed"),
    "fid": Statistic("FID", "eval/FID", "FID", measured="epoch"),
    "kid_mean": Statistic("KID", "eval/KID", "KID", 4, measured="epoch"),
    "kid_std": Statistic("KID std", "eval/KID std", digits=4, measured="epoch"),  # (its spread: drawn in no panel)
    "precision": Statistic("precision", "eval/precision", "precision and recall", measured="epoch"),
    "recall": Statistic("recall", "eval/recall", "precision and recall", measured="epoch"),
}


D_OUTPUTS = {"D_x": "real", "D_G_z": "fake"}  # the statistics holding D's mean outputs: the loss names them


def statistic(name: str, loss: Loss | None = None) -> Statistic:
    """How `name` is shown: its entry in STATISTICS (D's outputs named as the run's `loss` says: "D(x)" for a
    probability, "D(x) score" for a score); else under its own name, in a panel of its own: the value of a
    registered metric (a spread, "..._std", in none) as an evaluation, anything else as a step's statistic."""
    if name in D_OUTPUTS and loss is not None:
        side = D_OUTPUTS[name]
        label = getattr(loss.d_outputs(), side)
        return dataclasses.replace(STATISTICS[name], label=label, tag=f"D/{side} {label}")
    if name in STATISTICS:
        return STATISTICS[name]
    if name in metric_values():
        return Statistic(name, f"eval/{name}", "" if name.endswith("_std") else name, 4, measured="epoch")
    return Statistic(name, f"statistics/{name}", name, 4)


@cache
def metric_values() -> frozenset[str]:
    """The names of the values the registered metrics measure."""
    return frozenset(value for name in METRICS.names for value in METRICS.spec(name).values)


def measurements(row: dict, measured: str) -> dict[str, float]:
    """The row's numbers of one kind ("step", "speed" or "epoch"), by name."""
    return {name: value for name, value in row.items()
            if name not in BOOKKEEPING and name not in TEXT_COLUMNS and statistic(name).measured == measured}


def shown(values: dict[str, float], loss: Loss | None = None) -> dict[str, str]:
    """label -> value with its decimals, D's outputs named as `loss` says: {"D(x)": "0.52"} (bce),
    {"D(x) score": "1.96"} (hinge)."""
    return {about.label: f"{value:,.{about.digits}f}"
            for about, value in ((statistic(name, loss), value) for name, value in values.items())}


class RunningMeans:
    """Sums the step's named statistics on their device, so a step needs no host sync; read every N steps. Also
    times the steps it holds (a resumed run carries the sums and seconds of its unfinished epoch and log window).
    A name a step does not report is counted as missed there: its mean is over the steps that reported it."""

    def __init__(self, device: torch.device):
        self.device = device
        self.names: tuple[str, ...] = ()  # every statistic reported so far, in the order first reported
        self.sums: torch.Tensor | None = None  # (len(names),)
        self.missed: list[int] = []  # for each name, the steps that did not report it
        self.count = 0  # steps added
        self.places: dict[tuple[str, ...], torch.Tensor] = {}  # a step's names -> their indices in names
        self.seconds_before = 0.0  # time spent on these steps before a resume
        self.started = time.perf_counter()

    def add(self, names: tuple[str, ...], values: torch.Tensor) -> None:
        """One step's statistics: their names, and their values stacked in that order, shape (len(names),)."""
        if names == self.names:
            self.sums += values
        else:  # a name appears, or this step reports fewer (one kernel either way)
            index = self.place(names)  # (first: it may replace self.sums with a longer tensor)
            self.sums.index_add_(0, index, values)
            for position, name in enumerate(self.names):
                if name not in names:
                    self.missed[position] += 1
        self.count += 1

    def place(self, names: tuple[str, ...]) -> torch.Tensor:
        """The indices of `names` in the sums, new names added (they missed every step so far)."""
        if names not in self.places:
            new = [name for name in names if name not in self.names]
            taken = [name for name in new if name in RESERVED]
            if taken:
                raise UserError(f"a statistic was reported as {taken[0]!r}, a column every history row has: report it "
                                "under another name")
            self.names += tuple(new)
            self.missed += [self.count] * len(new)
            zeros = torch.zeros(len(new), device=self.device)
            self.sums = zeros if self.sums is None else torch.cat([self.sums, zeros])
            self.places = {}  # (the indices of the names known before stay; the cache is rebuilt as steps come)
            self.places[names] = torch.tensor([self.names.index(name) for name in names], device=self.device)
        return self.places[names]

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def pop(self, mean_over_ranks=None) -> tuple[dict[str, float], float, int]:
        """(means by name, seconds, steps) since the last pop (one host sync), then start again.
        `mean_over_ranks` averages the sums over the processes of a distributed run."""
        means = {}
        if self.sums is not None:
            sums = (mean_over_ranks(self.sums) if mean_over_ranks else self.sums).tolist()
            means = {name: total / (self.count - missed)
                     for name, total, missed in zip(self.names, sums, self.missed) if self.count > missed}
            self.sums.zero_()
        result = (means, self.seconds, self.count)
        self.count, self.missed = 0, [0] * len(self.names)
        self.seconds_before, self.started = 0.0, time.perf_counter()
        return result

    def saved(self, mean_over_ranks=None) -> dict:
        sums = torch.zeros(0) if self.sums is None else mean_over_ranks(self.sums) if mean_over_ranks else self.sums
        return {"names": list(self.names), "sums": sums.detach().cpu(), "count": self.count, "missed": self.missed,
                "seconds": self.seconds}

    def restore(self, saved: dict) -> None:
        """The sums a checkpoint holds; an older one's unnamed sums are the four statistics of its day, and one
        without `missed` had every name reported at every step."""
        sums = saved["sums"]
        names = tuple(saved.get("names", STEP_NAMES_BEFORE_NAMING[:len(sums)]))
        missed = list(saved.get("missed", [0] * len(names)))
        if len(names) != len(sums) or len(missed) != len(names):
            raise ValueError(f"the running means name {len(names)} statistics but hold {len(sums)}")
        self.names, self.missed, self.places = names, [int(value) for value in missed], {}
        self.sums = sums.to(self.device, torch.float32).clone() if names else None
        self.count, self.seconds_before = int(saved["count"]), float(saved["seconds"])
        self.started = time.perf_counter()


class NonFiniteWatch:
    """The first step whose statistics held a NaN or an infinity, tracked on the device without a host sync per
    step; read every N steps. A NaN or an infinity in a loss or in D's outputs means the run has diverged (a
    learning rate too high, an overflow): training stops, naming the step, and no checkpoint is written from it."""

    def __init__(self, device: torch.device, step: int = 0):
        self.step = torch.tensor(step, dtype=torch.int64, device=device)  # steps done, counted on the device
        self.first_bad = torch.tensor(NONE_YET, dtype=torch.int64, device=device)

    def observe(self, values: torch.Tensor) -> None:
        """Called after each step with its statistics, stacked; four tiny kernels, no sync."""
        self.step += 1
        bad = ~torch.isfinite(values).all()
        self.first_bad = torch.where(bad, torch.minimum(self.first_bad, self.step), self.first_bad)


def all_finite(*networks: nn.Module) -> bool:
    """Whether every weight and buffer of the networks is finite (one host sync)."""
    tensors = [t for network in networks for t in network.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


STEP_NAMES_BEFORE_NAMING = ("loss_D", "loss_G", "D_x", "D_G_z")  # what checkpoints' unnamed sums hold
ORDER = {name: index for index, name in enumerate(STATISTICS)}  # a row's columns: these first, in this order


def history_row(kind: str, epoch: int, step: int, means: dict[str, float], seconds: float, images: int) -> dict:
    """A row of the history: the means of the named statistics, those STATISTICS lists first, in its order."""
    ordered = sorted(means, key=lambda name: ORDER.get(name, len(ORDER)))
    return {"kind": kind, "epoch": epoch, "step": step, **{name: means[name] for name in ordered},
            "seconds": seconds, "images_per_s": images / seconds if seconds > 0 else 0.0}


def graph_check_row(epoch: int, step: int, check: str, difference: float) -> dict:
    """The record of one self-check of the CUDA graphs (training/execution.py): `check` is "match" or "differs"
    (the replay against the eager step, with the largest difference found) or "failed" (the replay raised)."""
    return {"kind": "graph_check", "epoch": epoch, "step": step, "check": check, "difference": difference}


def columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in the order they first appear."""
    return list(dict.fromkeys(key for row in rows for key in row))


def history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(rows) or list(BOOKKEEPING), lineterminator="\n", restval="")
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


def history_figure(history: list[dict], title: str = "", loss: Loss | str = "bce", fid_label: str = "") -> Figure:
    """losses.png: a panel per group of statistics over the training steps (the losses, D's mean outputs, then
    any other statistic reported), then one per evaluation measured at epochs' ends. `loss` (the run's, or its
    registered name) names D's outputs and their axis (probabilities or scores); `fid_label` names FID's feature
    space."""
    rows = [row for row in history if row["kind"] == "step"] or [row for row in history if row["kind"] == "epoch"]
    evaluated = [row for row in history if row["kind"] == "epoch" and measurements(row, "epoch")]
    if isinstance(loss, str):
        loss = LOSSES.spec(loss) if loss in LOSSES.names else None
    panels: dict[str, Panel] = {}
    for source, measured in ((rows, "step"), (evaluated, "epoch")):
        for name in columns([measurements(row, measured) for row in source]):
            about = statistic(name, loss)
            if about.panel:
                panel = panels.setdefault(about.panel, panel_for(about.panel, loss, fid_label, source,
                                                                 markers=measured == "epoch"))
                panel.lines.append((name, about.label))
    return curves_figure(list(panels.values()), title)


def panel_for(name: str, loss: Loss | None, fid_label: str, rows: list[dict], markers: bool) -> Panel:
    """The panel a group of statistics is drawn in (D's outputs on the axis the run's loss gives them, None: a loss
    no longer registered); `markers` for values measured at a few epochs' ends."""
    probabilities = bool(loss is not None and loss.d_outputs().probability)
    if name == "losses":
        return Panel("Losses", "BCE" if probabilities else "loss", rows)
    if name == "outputs":
        axis = loss.d_outputs().axis if loss is not None else "mean output"
        return Panel("Discriminator outputs", axis, rows, probabilities=probabilities)
    if name == "FID":
        return Panel(f"FID ({fid_label.split(' (')[0]})" if fid_label else "FID", "FID, lower is better", rows,
                     markers=True)
    return Panel(name, name, rows, markers=markers)
