"""TensorBoardLogger: TensorBoard event files in the run folder (``tb/``).

Point ``tensorboard --logdir`` at the experiment's folder: every run folder's ``tb/`` is a run
of its own in TensorBoard's run selector (``trial/repeat_k/tb``).
"""
from __future__ import annotations

import numbers
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from pipeline.callbacks.base import Callback
from pipeline.state import FitState


class TensorBoardLogger(Callback):
    """Writes every epoch's metrics (the learning rate ``lr`` among them) as scalars at step =
    epoch (TensorBoard's float32 scalars: its default data loader shows no float64 ones); histograms of
    every parameter (weights, and learned neuron parameters such as ``tau_m``, ``omega``,
    ``v_th``) at epoch 0, every ``histogram_every`` epochs and at the last epoch; the resolved
    config as text.

    A fresh start clears ``tb/``; a resumed fit purges the events after its checkpoint's epoch
    (``purge_step``), so every epoch appears once in TensorBoard. Events are flushed at every
    epoch's end.

    Args:
        log_dir: the folder of the event files (``<run folder>/tb``).
        histogram_every: epochs between parameter histograms.
        config: the run's resolved config, written as text at step 0.
    """

    order = 55

    def __init__(self, log_dir: str | Path, histogram_every: int = 5, config: dict | None = None):
        self.log_dir, self.histogram_every, self.config = Path(log_dir), histogram_every, config
        self.writer: Any = None
        self._histogram_step: int | None = None

    def on_fit_start(self, state: FitState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if state.resumed_from is None and self.log_dir.exists():
            shutil.rmtree(self.log_dir)
        # a session start at step 0, then one at the resumed epoch: TensorBoard hides the events a
        # resumed fit replaces (it purges at every start but the first)
        purge = 0 if state.resumed_from is None else state.resumed_from + 1
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge)
        if state.resumed_from is None and self.config is not None:
            self.writer.add_text("config", config_markdown(self.config), 0)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if key != "epoch" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), epoch)
        if epoch % self.histogram_every == 0:
            self.histograms(state.model, epoch)
        self.writer.flush()

    def on_fit_end(self, state: FitState) -> None:
        if self.writer is not None and self._histogram_step != state.epoch:
            self.histograms(state.model, state.epoch)
        self.close()

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        self.close()

    def histograms(self, model: nn.Module, step: int) -> None:
        """One histogram per parameter of ``model``, tagged ``parameters/<name>``."""
        for name, param in model.named_parameters():
            self.writer.add_histogram(f"parameters/{name}", param.detach().float().cpu(), step)
        self._histogram_step = step

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.log_dir)!r})"


def config_markdown(config: dict) -> str:
    """The resolved config as YAML in a Markdown code block (TensorBoard's text tab renders Markdown)."""
    from settings.yaml_io import dump_yaml

    return "\n".join("    " + line for line in dump_yaml(config).splitlines())
