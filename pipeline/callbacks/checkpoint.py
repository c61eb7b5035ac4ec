"""ModelCheckpoint: best and last checkpoints with everything needed to resume."""
from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import Literal

import torch

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import NonNegativeInt, PositiveInt
from settings.metrics import VAL_ACC, selection_metric_problem
from settings.registries import CALLBACKS


class CheckpointError(Exception):
    """A checkpoint file that cannot be loaded (truncated, corrupt, not a checkpoint, or refused
    because unpickling it would run code); the message names the file in one line."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"cannot load checkpoint {path}: {reason}")
        self.path, self.reason = Path(path), reason


#: The keys every checkpoint written by ModelCheckpoint has (TrainingPipeline.checkpoint).
REQUIRED_KEYS = ("epoch", "seed", "model")


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temporary file, flush it to disk, then rename over ``path``: a kill (even
    ``kill -9``) during the save leaves the previous checkpoint whole, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _legacy_globals() -> list:
    """Numpy arrays, which checkpoints written before RNG states were kept as plain tensors hold
    (numpy's MT19937 key); rebuilding one calls no code of the file's choosing."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed it
    return [np.ndarray, np.dtype, type(np.dtype(np.uint32)), core.multiarray._reconstruct]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by ModelCheckpoint, loaded with ``weights_only=True``: tensors and
    plain containers only, so a crafted file can never run code. Raises CheckpointError."""
    try:
        with torch.serialization.safe_globals(_legacy_globals()):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise CheckpointError(path, f"truncated or corrupt (UnpicklingError: {str(exc)[:120]})") from None
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f"it names {found.group(1)}, " if found else ""
        raise CheckpointError(path, f"refused: {what}not only tensors and plain data (loading it could run "
                                    "code)") from None
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except Exception as exc:  # noqa: BLE001 (torch reports a damaged file in many ways)
        detail = str(exc).split(".")[0].splitlines()[0] if str(exc) else "empty or cut short"
        raise CheckpointError(path, f"truncated or corrupt ({type(exc).__name__}: {detail[:120]})") from None
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in REQUIRED_KEYS):
        raise CheckpointError(path, f"not a Spikelab checkpoint (needs the keys {', '.join(REQUIRED_KEYS)})")
    return ckpt


def epoch_checkpoint_name(epoch: int) -> str:
    """The file name of the checkpoint kept after ``epoch`` (``epoch_<N>.pt``, in ``checkpoints/``)."""
    return f"epoch_{epoch}.pt"


@CALLBACKS.register
class ModelCheckpoint(Callback):
    """Saves ``checkpoints/last.pt`` (every ``every`` epochs) and ``checkpoints/best.pt`` (when
    ``monitor`` improves) in the run folder: model, optimizer, scheduler, RNG states, epoch and
    the metric history, so a run can resume where it stopped.

    Args:
        monitor: metric that decides "best" (default: the pipeline's ``selection``, ``val_acc``
            unless set; the training split's metric without a validation split).
        mode: ``max`` or ``min`` (with the default monitor: the selection's mode).
        save_best: keep best.pt.
        save_last: keep last.pt.
        every: write last.pt every this many epochs (and always at the last epoch).
        keep_every: also keep ``checkpoints/epoch_<N>.pt`` of every epoch N divisible by this
            (``python main.py eval RUN --checkpoint epoch:N`` reads them); null: none.
        keep: epochs whose ``checkpoints/epoch_<N>.pt`` is kept besides (0: the untrained model).
    """

    order = 20

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        problem = params["monitor"] and selection_metric_problem(params["monitor"])
        return [("monitor", problem)] if problem else []

    def __init__(self, monitor: str | None = None, mode: Literal["min", "max"] = "max", save_best: bool = True,
                 save_last: bool = True, every: PositiveInt = 1, keep_every: PositiveInt | None = None,
                 keep: list[NonNegativeInt] = ()):
        self.monitor, self.mode, self.save_best, self.save_last, self.every = monitor, mode, save_best, save_last, every
        self.keep_every, self.keep = keep_every, sorted(set(keep))
        self.best: float | None = None
        self.saved: dict[str, Path] = {}
        self.last_epoch: int | None = None

    def folder(self, state: FitState) -> Path | None:
        return None if state.run_dir is None else Path(state.run_dir) / "checkpoints"

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        folder = self.folder(state)
        if folder is None:
            return
        key, mode = self.monitor, self.mode
        if key is None:
            selection = getattr(state.pipeline, "selection", None)
            key, mode = (selection.monitor, selection.mode) if selection is not None else (VAL_ACC, "max")
            if key not in metrics and key.startswith("val_"):
                key = key.replace("val_", "train_", 1)
        if key not in metrics:
            raise KeyError(f"ModelCheckpoint monitors {key!r}, which this run does not produce; "
                           f"available: {', '.join(sorted(metrics))}")
        value = metrics[key]
        better = not math.isnan(value) and (self.best is None or (value > self.best if mode == "max"
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
        if epoch in self.keep or (self.keep_every is not None and epoch > 0 and epoch % self.keep_every == 0):
            save_atomic(payload or state.pipeline.checkpoint(state), folder / epoch_checkpoint_name(epoch))

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
