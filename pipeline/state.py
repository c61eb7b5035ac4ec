"""What the training loop shares with its callbacks."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


class DivergenceError(RuntimeError):
    """The loss or the parameters became NaN or infinite; the run stops with this reason."""


@dataclass
class FitState:
    """The state of one ``TrainingPipeline.fit`` call, owned by the loop and read by callbacks.

    ``history`` holds one metrics dict per evaluated epoch (epoch 0 = untrained). A callback may
    call ``request_stop(reason)``; the loop stops after the current epoch.
    """

    pipeline: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    seed: int
    run_dir: Path | None
    epochs: int
    split_sizes: dict[str, int]
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None
    resumed_from: int | None = None  # the epoch a resumed fit restarted after
    extra: dict[str, Any] = field(default_factory=dict)  # RNG generators and such, for checkpoints
    logged: dict[str, float] = field(default_factory=dict)  # metrics callbacks logged this epoch

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def log_metric(self, name: str, value: float) -> None:
        """Record a metric for the current epoch: it joins the epoch's metrics (database, CSV,
        MLflow) like any other; logged again in the same epoch, the last value counts."""
        self.logged[name] = float(value)

    def take_logged(self) -> dict[str, float]:
        logged, self.logged = self.logged, {}
        return logged

    @property
    def metrics(self) -> dict[str, float]:
        """The latest epoch's metrics."""
        return self.history[-1] if self.history else {}
