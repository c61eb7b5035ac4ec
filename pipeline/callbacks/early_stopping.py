"""EarlyStopping: stop when a metric stops improving."""
from __future__ import annotations

import math
from typing import Literal

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import NonNegativeFloat, NonNegativeInt, PositiveInt
from settings.metrics import VAL_LOSS, selection_metric_problem
from settings.registries import CALLBACKS


@CALLBACKS.register
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Improvement means beating the best value by more than ``min_delta`` (absolute) or by more than
    ``min_delta * |best|`` (``relative: true``), upwards in ``max`` mode, downwards in ``min``;
    ``min_delta_percent`` also asks for more than that percentage of ``|best|`` (the larger
    threshold counts).

    Args:
        monitor: metric name (e.g. ``val_loss``, ``val_acc``).
        mode: ``min`` or ``max``.
        patience: epochs without improvement before stopping.
        min_delta: the least change that counts as an improvement.
        relative: ``min_delta`` is a fraction of the best value.
        min_delta_percent: the least relative change that counts, in percent of ``|best|``.
        start_epoch: epochs before this one never count against patience.
        stop_at: stop as soon as the metric reaches this value (e.g. 1.0 for train_acc).
    """

    order = 10

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        problem = params["monitor"] and selection_metric_problem(params["monitor"])
        return [("monitor", problem)] if problem else []

    def __init__(self, monitor: str = VAL_LOSS, mode: Literal["min", "max"] = "min", patience: PositiveInt = 5,
                 min_delta: NonNegativeFloat = 0.0, relative: bool = False, start_epoch: NonNegativeInt = 0,
                 stop_at: float | None = None, min_delta_percent: NonNegativeFloat = 0.0):
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.min_delta_percent = min_delta_percent
        self.relative, self.start_epoch, self.stop_at = relative, start_epoch, stop_at
        self.best: float | None = None
        self.wait = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        delta = self.min_delta * abs(self.best) if self.relative else self.min_delta
        delta = max(delta, self.min_delta_percent / 100 * abs(self.best))
        return value > self.best + delta if self.mode == "max" else value < self.best - delta

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        if self.monitor not in metrics:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which this run does not produce; "
                           f"available: {', '.join(sorted(metrics))}")
        value = metrics[self.monitor]
        if math.isnan(value):
            return
        if self.stop_at is not None and (value >= self.stop_at if self.mode == "max" else value <= self.stop_at):
            state.request_stop(f"{self.monitor} reached {self.stop_at:g} at epoch {epoch}")
            return
        if self.improved(value):
            self.best, self.wait = value, 0
        elif epoch >= self.start_epoch:
            self.wait += 1
            if self.wait >= self.patience:
                state.request_stop(f"{self.monitor} did not improve for {self.patience} epochs "
                                   f"(best {self.best:.6g})")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state["best"], state["wait"]
