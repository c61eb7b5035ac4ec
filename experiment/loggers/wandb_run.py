"""WandbLogger: one Weights & Biases run per Spikelab run.

group = the experiment (its folder name), job type = the trial, name = the run folder under the
experiment folder (``trial/repeat_k``). In ``offline`` mode W&B writes into the run folder
(``wandb/offline-run-*``) and nothing leaves the machine; ``wandb sync <that folder>`` uploads
it later. wandb is imported when the run starts, only when ``loggers.wandb`` asks for it.
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from pipeline.callbacks.base import Callback
from pipeline.state import FitState


class WandbLogger(Callback):
    """Logs every epoch's metrics at step = epoch (with an ``epoch`` key), the numeric summary
    into the run's summary at the end, and the resolved config as the run's config. A resumed
    fit is a new W&B run that first logs the restored epochs. The W&B run finishes with exit
    code 0, or 1 when the fit raised.

    Args:
        folder: the run folder (W&B's ``dir``).
        project, mode, group, job_type, name, entity: as ``wandb.init`` takes them.
        config: the run's resolved config.
    """

    order = 60

    def __init__(self, folder: str | Path, project: str, mode: str, group: str, job_type: str, name: str,
                 config: dict | None = None, entity: str | None = None):
        self.folder, self.project, self.mode, self.entity = Path(folder), project, mode, entity
        self.group, self.job_type, self.name, self.config = group, job_type, name, config
        self.run: Any = None

    def on_fit_start(self, state: FitState) -> None:
        import wandb

        self.folder.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(console="off", silent=True, x_disable_stats=True, save_code=False)
        self.run = wandb.init(project=self.project, entity=self.entity, mode=self.mode, dir=str(self.folder),
                              group=self.group, job_type=self.job_type, name=self.name, config=self.config,
                              reinit="create_new", settings=settings)
        for row in state.history:
            self.run.log(_numbers(row) | {"epoch": int(row["epoch"])}, step=int(row["epoch"]))

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        self.run.log(_numbers(metrics) | {"epoch": epoch}, step=epoch)

    def on_fit_end(self, state: FitState) -> None:
        if self.run is not None:
            self.run.summary.update(_numbers(state.summary))
        self.close()

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        self.close(exit_code=1)

    def close(self, exit_code: int = 0) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.finish(exit_code=exit_code)

    def __repr__(self) -> str:
        return f"WandbLogger(project={self.project!r}, mode={self.mode!r}, name={self.name!r})"


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()
            if k != "epoch" and isinstance(v, numbers.Real) and not isinstance(v, bool)}
