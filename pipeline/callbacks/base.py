"""Callbacks: a small fixed set of no-op hooks, called in a documented order.

Hooks, in the order the loop calls them::

    on_fit_start(state)                              once, after the model, optimizer and data exist
    on_epoch_end(state, 0, metrics)                  epoch 0: the untrained model evaluated
    for every epoch e = 1..epochs:
        on_epoch_start(state, e)
        for every batch:
            on_before_optimizer_step(state, batch, result)  gradients in .grad, weights not yet updated
            on_batch_end(state, batch, result)              after the optimizer step
        on_epoch_end(state, e, metrics)              after evaluation (and the LR scheduler step)
    on_fit_end(state)                                after the last epoch or an early stop
    on_exception(state, exc)                         instead of on_fit_end when the fit raises

``result`` is a ``pipeline.batches.BatchResult``: the batch's loss (a float, before the update),
the model's output and the loss's input record. Callbacks may act: change weights or gradients
in ``on_before_optimizer_step``/``on_batch_end``, request a stop, and log metrics of their own
with ``state.log_metric(name, value)``, which join the epoch's metrics (database, CSV, MLflow).

Within a hook, callbacks run by ascending ``order`` (SparsityMetrics -10: it adds its metrics to
the epoch's before they are recorded, MetricsTracker 0, EarlyStopping 10,
ModelCheckpoint 20, CSVLogger 30, DBLogger 40, RunLog 45, ProgressBar 90, SpikeRecorder 93,
RunPlots 95, MLflowCallback 98: last, so that it logs the files the others wrote), ties in the
order they were given. A callback's checkpointed state is stored under
its ``key`` (the class name, ``#2``, ``#3``... for a second and third of one class), which does
not change between runs of the same config.
"""
from __future__ import annotations

from pipeline.state import FitState
from settings.registries import CALLBACKS


@CALLBACKS.set_base
class Callback:
    order: int = 50

    def on_fit_start(self, state: FitState) -> None:
        pass

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        pass

    def on_before_optimizer_step(self, state: FitState, batch: int, result) -> None:
        pass

    def on_batch_end(self, state: FitState, batch: int, result) -> None:
        pass

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_fit_end(self, state: FitState) -> None:
        pass

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        pass

    def state_dict(self) -> dict:
        """What a checkpoint must keep for this callback to resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def ordered(callbacks: list[Callback]) -> list[Callback]:
    return sorted(callbacks, key=lambda cb: cb.order)


def callback_keys(callbacks: list[Callback]) -> dict[str, Callback]:
    """Each callback under a stable key: its class name, with ``#2``, ``#3``... for the second and
    third callback of one class (in the loop's order, which the config fixes)."""
    keys: dict[str, Callback] = {}
    seen: dict[str, int] = {}
    for cb in callbacks:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        keys[name if seen[name] == 1 else f"{name}#{seen[name]}"] = cb
    return keys
