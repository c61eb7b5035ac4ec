"""CSVLogger: ``metrics.csv`` in the run folder, one row per epoch."""
from __future__ import annotations

import csv
from pathlib import Path

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.registries import CALLBACKS


@CALLBACKS.register
class CSVLogger(Callback):
    """One row per evaluated epoch (epoch 0 included), one column per metric.

    Args:
        filename: file name inside the run folder.
    """

    order = 30

    def __init__(self, filename: str = "metrics.csv"):
        self.filename = filename
        self.columns: list[str] = []

    def path(self, state: FitState) -> Path | None:
        return None if state.run_dir is None else Path(state.run_dir) / self.filename

    def on_fit_start(self, state: FitState) -> None:
        # a resumed fit rewrites the file from the restored history, so rows are never duplicated
        path = self.path(state)
        if path is not None:
            self._rewrite(path, state.history)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        path = self.path(state)
        if path is None:
            return
        row = {"epoch": epoch, **metrics}
        if any(k not in self.columns for k in row):
            self._rewrite(path, state.history)  # new columns: rewrite with the full header
            return
        with path.open("a", newline="") as fh:
            csv.DictWriter(fh, self.columns).writerow(row)

    def _rewrite(self, path: Path, history: list[dict[str, float]]) -> None:
        columns: list[str] = ["epoch"]
        for row in history:
            columns += [k for k in row if k not in columns]
        self.columns = columns
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(history)
