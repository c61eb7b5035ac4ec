"""ProgressBar: a tqdm bar over epochs with the latest metrics."""
from __future__ import annotations

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import NonNegativeInt
from settings.metrics import TEST_ACC, TRAIN_ACC, TRAIN_LOSS, VAL_ACC
from settings.registries import CALLBACKS

SHOWN = (TRAIN_LOSS, TRAIN_ACC, VAL_ACC, TEST_ACC)  # beside the bar


@CALLBACKS.register
class ProgressBar(Callback):
    """Shows epochs done / total and the latest loss and accuracies.

    Args:
        leave: keep the finished bar on screen.
        desc: text in front of the bar (default: the run folder's name).
        position: terminal line of the bar (0 is the session's bar over runs).
    """

    order = 90

    def __init__(self, leave: bool = False, desc: str | None = None, position: NonNegativeInt = 1):
        self.leave, self.desc, self.position = leave, desc, position
        self.bar = None

    def on_fit_start(self, state: FitState) -> None:
        from tqdm.auto import tqdm

        desc = self.desc or (f"{state.run_dir.parent.name}/{state.run_dir.name}" if state.run_dir is not None else "fit")
        self.bar = tqdm(total=state.epochs, desc=desc, leave=self.leave, unit="epoch", dynamic_ncols=True,
                        initial=state.resumed_from or 0, position=self.position, disable=None)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        if self.bar is None:
            return
        shown = {k: f"{metrics[k]:.4g}" for k in SHOWN if k in metrics}
        self.bar.set_postfix(shown, refresh=False)
        if epoch > 0:
            self.bar.update(1)

    def on_fit_end(self, state: FitState) -> None:
        self._close()

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
