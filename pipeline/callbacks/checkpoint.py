"""ModelCheckpoint: best and last checkpoints with everything needed to resume."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import torch

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import PositiveInt
from settings.registries import CALLBACKS
from settings.schema import selection_metric_problem


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temporary file, then rename: a kill never leaves a truncated checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by ModelCheckpoint (trusted local file: it holds RNG states)."""
    return torch.load(path, map_location=map_location, weights_only=False)


@CALLBACKS.register
class ModelCheckpoint(Callback):
    """Saves ``checkpoints/last.pt`` (every ``every`` epochs) and ``checkpoints/best.pt`` (when
    ``monitor`` improves) in the run folder: model, optimizer, scheduler, RNG states, epoch and
    the metric history, so a run can resume where it stopped.

    Args:
        monitor: metric that decides "best" (default: ``val_acc``, or ``train_acc`` without a
            validation split).
        mode: ``max`` or ``min``.
        save_best: keep best.pt.
        save_last: keep last.pt.
        every: write last.pt every this many epochs (and always at the last epoch).
    """

    order = 20

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        problem = params["monitor"] and selection_metric_problem(params["monitor"])
        return [("monitor", problem)] if problem else []

    def __init__(self, monitor: str | None = None, mode: Literal["min", "max"] = "max", save_best: bool = True,
                 save_last: bool = True, every: PositiveInt = 1):
        self.monitor, self.mode, self.save_best, self.save_last, self.every = monitor, mode, save_best, save_last, every
        self.best: float | None = None
        self.saved: dict[str, Path] = {}
        self.last_epoch: int | None = None

    def folder(self, state: FitState) -> Path | None:
        return None if state.run_dir is None else Path(state.run_dir) / "checkpoints"

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        folder = self.folder(state)
        if folder is None:
            return
        key = self.monitor or ("val_acc" if "val_acc" in metrics else "train_acc")
        if key not in metrics:
            raise KeyError(f"ModelCheckpoint monitors {key!r}, which this run does not produce; "
                           f"available: {', '.join(sorted(metrics))}")
        value = metrics[key]
        better = not math.isnan(value) and (self.best is None or (value > self.best if self.mode == "max"
                                                                   else value < self.best))
        if better:
            self.best = value
        payload = None
        if self.save_best and better:
            payload = state.pipeline.checkpoint(state)
            save_atomic(payload, folder / "best.pt")
            self.saved["best"] = folder / "best.pt"
        last_due = epoch % self.every == 0 or epoch == state.epochs or state.should_stop
        if self.save_last and last_due:
            self._save_last(state, folder, payload)

    def on_fit_end(self, state: FitState) -> None:
        folder = self.folder(state)
        if folder is not None and self.save_last and state.history and self.last_epoch != state.epoch:
            self._save_last(state, folder)

    def _save_last(self, state: FitState, folder: Path, payload: dict | None = None) -> None:
        save_atomic(payload or state.pipeline.checkpoint(state), folder / "last.pt")
        self.saved["last"] = folder / "last.pt"
        self.last_epoch = state.epoch

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
