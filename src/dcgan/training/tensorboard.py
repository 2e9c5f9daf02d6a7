"""TensorBoard logs of a run (optional: `pip install -e ".[tensorboard]"`, then --tensorboard).

Rank 0 writes checkpoints/<run>/tb/ (or <logdir>/<run>/ with --logdir); `tensorboard --logdir checkpoints` shows
every run. At the run's step numbers:
    loss/D, loss/G                     every log_every steps: the means of the window, as in history.csv
    D/real D(x), D/fake D(G(z))        D's mean probability of "real" (bce, r1)
    D/real D(x) score, D/fake ...      or D's mean score, under the other losses (named by the loss's d_outputs())
    speed/images_per_s
    eval/FID                           every eval_every epochs
(the tags of history.STATISTICS: every statistic a row has is written, under its own name when it has no tag)
    samples/fixed_noise                the epoch's fixed-noise grid (step 0: before training)
    config                             the settings the run started with, as a text table and as hparams
A resumed run writes after its checkpoint's step and tells TensorBoard to drop what a killed process wrote past
that step (purge_step), so the curves go on without repeated or rewound steps. history.csv and losses.png stay.
A write that fails (a full disk, the folder made read-only) closes the log, its event file cut back to its last
whole record (the writer's thread prints no traceback of its own: event_files.py), and becomes the run's
failed_write: at the next log step every rank stops, rank 0 telling it in one line (WriteError).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig, fields_with
from ..errors import SettingError
from ..files import UnreadableFile, WriteError, read_png, what_to_do
from ..models.losses import Loss
from ..paths import TENSORBOARD_FOLDER, RunPaths
from .event_files import cut_to_whole_records, event_files, quiet_writer_threads
from .history import measurements, statistic
from .state import TrainState

GRID_TAG, CONFIG_TAG = "samples/fixed_noise", "config"  # (each statistic's tag: history.STATISTICS)


def require_tensorboard(cfg: TrainConfig) -> None:
    """A SettingError before anything starts when --tensorboard is asked for and the package is missing."""
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SettingError("tensorboard", "--tensorboard needs the tensorboard package: pip install -e "
                           "\".[tensorboard]\" (or pip install tensorboard), or turn it off with --no-tensorboard")


def log_folder(cfg: TrainConfig, paths: RunPaths) -> Path:
    """Where the run's event files go: <logdir>/<run>/, or checkpoints/<run>/tb/."""
    return Path(cfg.logdir).expanduser() / paths.name if cfg.logdir else paths.checkpoints / TENSORBOARD_FOLDER


@contextlib.contextmanager
def tensorboard_callbacks(state: TrainState) -> Iterator[list[Any]]:
    """[a TensorBoardLog] on rank 0 with --tensorboard, else []; the event files are flushed and closed when the
    block ends, however it ends."""
    if not (state.cfg.tensorboard and state.setup.world.main):
        yield []
        return
    board = TensorBoardLog(log_folder(state.cfg, state.paths), state)
    try:
        yield [board]
    except BaseException:
        board.close(quietly=True)  # the error that stopped the run is the one to tell
        raise
    board.close()


class TensorBoardLog:
    """A training callback writing the run's curves, grids and config to event files in `folder`."""

    def __init__(self, folder: Path, state: TrainState):
        from torch.utils.tensorboard import SummaryWriter  # optional dependency: imported only when used

        self.folder, self.writer, self.failed = folder, None, False
        self.earlier_files = event_files(folder)
        quiet_writer_threads()
        # purge_step: a fresh run hides every older event here (step 0 on); a resumed one those past its step
        purge_step = state.step + 1 if state.step else 0
        self.writing(state, lambda: setattr(self, "writer", SummaryWriter(str(folder), purge_step=purge_step)))

    def writing(self, state: TrainState, write: Callable[[], Any]) -> None:
        """Call the writer (nothing once the log is closed); a write that fails (here, or before in the writer's
        thread) closes the log, cuts its event file back to whole records and becomes the run's failed_write."""
        if self.failed:
            return
        try:
            write()
        except OSError as error:
            state.failed_write = self.failure(error)
            self.close(quietly=True)

    def failure(self, error: OSError) -> WriteError:
        self.failed = True
        return WriteError(f"cannot write TensorBoard's log in {self.folder} ({error.strerror or error}): "
                          f"{what_to_do(error, self.folder / 'x')}, or leave TensorBoard out with --no-tensorboard")

    def on_train_start(self, state: TrainState) -> None:
        if not state.step:  # a fresh run (a resumed one's settings stay those of its start; see config.json)
            self.writing(state, lambda: self.write_start(state.cfg, state.paths.sample_grid(0)))

    def on_log(self, state: TrainState) -> None:
        self.writing(state, lambda: self.write_scalars(state.last_row, state.setup.loss, "step", "speed"))

    def on_epoch_end(self, state: TrainState) -> None:
        self.writing(state, lambda: self.write_epoch(state))

    def write_start(self, cfg: TrainConfig, grid: Path) -> None:
        self.write_hparams(cfg)
        self.writer.add_text(CONFIG_TAG, config_table(cfg), 0)
        self.write_grid(grid, 0)

    def write_epoch(self, state: TrainState) -> None:
        self.write_scalars(state.last_row, state.setup.loss, "epoch")
        if state.sample_path is not None:
            self.write_grid(state.sample_path, state.step)
        self.writer.flush()  # an epoch's events are on disk when its checkpoint is

    def write_scalars(self, row: dict, loss: Loss, *measured: str) -> None:
        """The row's statistics of these kinds, each under its tag (D's outputs as the run's loss names them)."""
        for kind in measured:
            for name, value in measurements(row, kind).items():
                self.writer.add_scalar(statistic(name, loss).tag, value, row["step"])

    def write_grid(self, path: Path, step: int) -> None:
        try:
            image = read_png(path)
        except UnreadableFile:  # (a grid that could not be written, or was replaced: the curves go on)
            return
        self.writer.add_image(GRID_TAG, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def write_hparams(self, cfg: TrainConfig) -> None:
        """The settings for TensorBoard's HPARAMS tab, in this run's own event file (no separate sub-run)."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(run_settings(cfg), {statistic("fid").tag: None}):
            self.writer.file_writer.add_summary(summary)

    def close(self, quietly: bool = False) -> None:
        """Flush and close the event file (after training: every rank is done); a failure is a WriteError, unless
        `quietly` (another error is being told). After a failed write, the file is cut back to its last whole
        record. Closing twice does nothing."""
        writer, self.writer = self.writer, None
        error = None
        if writer is not None:
            try:
                writer.close()
            except OSError as caught:
                error = self.failure(caught)
        if self.failed:
            for path in event_files(self.folder) - self.earlier_files:
                cut_to_whole_records(path)
        if error is not None and not quietly:
            raise error


def run_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that describe the run (its folders left out)."""
    return {name: value for name, value in dataclasses.asdict(cfg).items() if name not in fields_with("place")}


def config_table(cfg: TrainConfig) -> str:
    """The settings as a Markdown table, which TensorBoard's TEXT tab renders."""
    rows = "\n".join(f"| {name} | {value!r} |" for name, value in run_settings(cfg).items())
    return f"| setting | value |\n|---|---|\n{rows}"
