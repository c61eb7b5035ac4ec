"""Callbacks: a small fixed set of no-op hooks, called in a documented order.

Hooks, in the order the loop calls them::

    on_fit_start(state)                   once, after the model, optimizer and data exist
    on_epoch_end(state, 0, metrics)       epoch 0: the untrained model evaluated
    for every epoch e = 1..epochs:
        on_epoch_start(state, e)
        on_batch_end(state, batch, loss)  after every optimizer step
        on_epoch_end(state, e, metrics)   after evaluation (and the LR scheduler step)
    on_fit_end(state)                     after the last epoch or an early stop
    on_exception(state, exc)              instead of on_fit_end when the fit raises

Within a hook, callbacks run by ascending ``order`` (MetricsTracker 0, EarlyStopping 10,
ModelCheckpoint 20, CSVLogger 30, DBLogger 40, MLflowCallback 50, ProgressBar 90), ties in the
order they were given.
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

    def on_batch_end(self, state: FitState, batch: int, loss: float) -> None:
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
