"""MetricsTracker: the history of every epoch and the run's summary (final and best values)."""
from __future__ import annotations

import math

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.registries import CALLBACKS


def summarize_history(history: list[dict[str, float]]) -> dict[str, float]:
    """``final_<metric>`` for every metric of the last epoch; ``best_val_acc``, ``best_epoch`` and
    ``test_acc_at_best_val`` (without a validation split: ``best_train_acc`` and ``best_epoch``)."""
    if not history:
        return {}
    summary = {f"final_{k}": v for k, v in history[-1].items() if k != "epoch"}
    summary["epochs"] = history[-1]["epoch"]
    key = "val_acc" if any("val_acc" in h for h in history) else "train_acc"
    scored = [h for h in history if key in h and not math.isnan(h[key])]
    if scored:
        best = max(scored, key=lambda h: h[key])  # first epoch reaching the maximum
        summary[f"best_{key}"] = best[key]
        summary["best_epoch"] = best["epoch"]
        if key == "val_acc" and "test_acc" in best:
            summary["test_acc_at_best_val"] = best["test_acc"]
    return summary


@CALLBACKS.register
class MetricsTracker(Callback):
    """Keeps ``state.history`` and ``state.summary`` up to date (always installed, first)."""

    order = 0

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        state.history.append({"epoch": epoch, **metrics})
        state.summary = summarize_history(state.history)
