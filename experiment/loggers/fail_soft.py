"""FailSoft: a writer's first error switches it off for the run; the run goes on."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.loggers import LoggerSettings

log = logging.getLogger(__name__)


class FailSoft(Callback):
    """Calls every hook of ``inner``; the first exception is logged once (a warning, and a line
    in the run's ``log.txt`` through ``note``), ``inner.close()`` is tried and the writer stays
    off for the rest of the run. Training goes on and the database records the run as usual.
    Interrupts (KeyboardInterrupt, SIGTERM) pass through.

    Args:
        inner: the writer, a callback with a ``close()`` method.
        name: what the warning calls it (``TensorBoard writer``).
        note: writes one line into the run's log.
    """

    def __init__(self, inner: Callback, name: str, note: Callable[[str], None] | None = None):
        self.inner, self.name, self.note = inner, name, note
        self.order = inner.order
        self.problem: str | None = None

    def _call(self, hook: str, *args: object) -> None:
        if self.problem is not None:
            return
        try:
            getattr(self.inner, hook)(*args)
        except Exception as exc:  # noqa: BLE001 (a view of the run must never cost the run)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            self.problem = (f"{self.name} off for this run: {hook} raised {type(exc).__name__}: {first}; "
                            "training goes on and the experiment database still records the run")
            log.warning(self.problem)
            if self.note is not None:
                self.note(self.problem)
            try:
                self.inner.close()
            except Exception:  # noqa: BLE001 (already switched off; nothing more to report)
                pass

    def on_fit_start(self, state: FitState) -> None:
        self._call("on_fit_start", state)

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        self._call("on_epoch_start", state, epoch)

    def on_before_optimizer_step(self, state: FitState, batch: int, result) -> None:
        self._call("on_before_optimizer_step", state, batch, result)

    def on_batch_end(self, state: FitState, batch: int, result) -> None:
        self._call("on_batch_end", state, batch, result)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        self._call("on_epoch_end", state, epoch, metrics)

    def on_fit_end(self, state: FitState) -> None:
        self._call("on_fit_end", state)

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        self._call("on_exception", state, exc)

    def __repr__(self) -> str:
        return f"FailSoft({self.inner!r})"


def run_loggers(settings: LoggerSettings, run_dir: str | Path, config: dict, info: dict, label: str,
                note: Callable[[str], None] | None = None) -> list[Callback]:
    """The writers ``settings`` switches on for one run, each in a :class:`FailSoft`.

    ``info`` is the run's ``run.json`` (``experiment``, ``version``, ``trial``); ``label`` its
    folder under the experiment folder (``trial/repeat_k``). W&B's project defaults to the
    experiment's name, its group is the experiment's folder name (``name_v2`` from version 2
    on), its job type the trial and its run name ``label``.
    """
    from experiment.run_folder import RunFolder
    from settings.names import experiment_folder_name

    folder = RunFolder(run_dir)
    writers: list[Callback] = []
    if settings.tensorboard is not None:
        from experiment.loggers.tensorboard import TensorBoardLogger

        writers.append(FailSoft(TensorBoardLogger(folder.tensorboard, settings.tensorboard.histogram_every, config),
                                "TensorBoard writer", note))
    if settings.profile is not None:
        from experiment.loggers.profiler import EpochProfiler

        profile = settings.profile
        writers.append(FailSoft(EpochProfiler(folder.profiler, profile.epochs, profile.steps, profile.row_limit, note),
                                "profiler", note))
    if settings.wandb is not None:
        from experiment.loggers.wandb_run import WandbLogger

        wandb, experiment = settings.wandb, str(info["experiment"])
        group = experiment_folder_name(experiment, int(info.get("version", 1)))
        writers.append(FailSoft(WandbLogger(folder.path, wandb.project or experiment, wandb.mode, group,
                                            str(info["trial"]), label, config, wandb.entity), "W&B writer", note))
    return writers
