"""Callbacks that record a run in the experiment database (the pipeline's only DB writer)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from experiment.store.base import ExperimentStore
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.metrics import EPOCH_HEADLINE


class DBLogger(Callback):
    """Writes every epoch's metrics as one batch (one transaction) into the store.

    On a resumed fit it first drops rows logged after the checkpoint's epoch and re-writes the
    restored history (idempotent upserts), so a resumed run never duplicates or loses a row.
    """

    order = 40

    def __init__(self, store: ExperimentStore, run_id: int):
        self.store, self.run_id = store, run_id

    def on_fit_start(self, state: FitState) -> None:
        if state.resumed_from is not None:
            self.store.delete_metrics_after(self.run_id, state.resumed_from)
            for row in state.history:
                self.store.log_metrics(self.run_id, int(row["epoch"]),
                                       {k: v for k, v in row.items() if k != "epoch"})

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        self.store.log_metrics(self.run_id, epoch, metrics)


class RunLog(Callback):
    """``log.txt`` in the run folder: one line per event of every attempt (start, each epoch's
    headline metrics, the end with its reason), appended, so the whole history of a run is there."""

    order = 45

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def note(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}\n")

    def on_fit_start(self, state: FitState) -> None:
        if state.resumed_from is not None:
            self.note(f"resumed after epoch {state.resumed_from}")

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {metrics[k]:.4g}" for k in EPOCH_HEADLINE if k in metrics)
        self.note(f"epoch {epoch}: {shown}")

    def on_fit_end(self, state: FitState) -> None:
        if state.stop_reason:
            self.note(f"stopped early: {state.stop_reason}")


class Heartbeat:
    """A daemon thread that marks a RUNNING run alive every ``interval`` seconds."""

    def __init__(self, store: ExperimentStore, run_id: int, interval: float):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.heartbeat(self.run_id)
            except Exception:  # a missed beat is retried at the next interval
                pass

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
