"""SpikeRecorder: spikes and membrane traces of chosen layers for a few fixed samples, at chosen
epochs, as ``recordings/epoch_<k>.npz`` in the run folder (layout: tools.recordings), with a
raster and a trace plot of each under ``plots/recordings/``."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from pipeline.batches import EncodedSplit, loss_input
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import NonNegativeInt, PositiveInt
from settings.registries import CALLBACKS
from tools.recordings import (LayerRecording, Recording, plot_raster, plot_traces, recording_files, recording_path,
                              save_recording)

SPLIT_PREFERENCE = ("test", "val", "train")
PLOTS = Path("plots") / "recordings"


def balanced_indices(targets: torch.Tensor, count: int) -> list[int]:
    """``count`` positions of a split, class-balanced: the first sample of each class (in class
    order), then the second of each, and so on; for per-step targets ``[P, T]`` (no class per
    sample) simply the first ``count``."""
    n = len(targets)
    if targets.dim() != 1:
        return list(range(min(count, n)))
    targets = targets.cpu()
    queues = [torch.nonzero(targets == k).flatten().tolist() for k in torch.unique(targets).tolist()]
    chosen: list[int] = []
    for rank in range(n):
        for queue in queues:
            if rank < len(queue) and len(chosen) < count:
                chosen.append(queue[rank])
        if len(chosen) >= count:
            break
    return chosen


@CALLBACKS.register
class SpikeRecorder(Callback):
    """Records what chosen layers do on a few fixed samples: at each epoch of ``epochs`` (0 is
    the untrained model) and, with ``last``, after the fit's last epoch (also an early stop), it
    runs the model on the samples and writes ``recordings/epoch_<k>.npz`` (spikes and membrane
    ``[T, S, N]`` of every chosen layer, the input raster, the readout's membrane, labels and
    predictions; layout in tools.recordings) and, with ``plots``, ``plots/recordings/raster_epoch_<k>.png``
    and ``traces_epoch_<k>.png``. Read them back with ``tools.recordings.load_run_recordings(run_dir)``
    (``analysis.recordings`` for notebooks).

    Layers whose output is not a time-major raster (first-spike layers give spike times, and no
    membrane) are left out; their recording still holds scores, labels and predictions.

    The samples are the same at every epoch: ``indices`` in the split, or ``samples`` chosen
    class-balanced (the first of each class, then the second...). A resumed fit keeps the
    recordings of the epochs it restored and records the later ones again; a fresh start
    removes what an earlier attempt left.

    Args:
        layers: layer indices to record (``[0]``, ``[-1]``; default: every layer).
        samples: how many samples to record.
        split: the split they come from (default: test, else val, else train: the first with samples).
        indices: positions in the split (instead of the class-balanced choice).
        epochs: the epochs to record after (0: before training; default ``[0]``).
        last: also record after the last epoch of the fit.
        readout: also record the readout's membrane (when it has one).
        plots: draw a raster and a trace plot of every recording.
    """

    order = 93

    def __init__(self, layers: list[int] | None = None, samples: PositiveInt = 8,
                 split: Literal["train", "val", "test"] | None = None, indices: list[NonNegativeInt] | None = None,
                 epochs: list[NonNegativeInt] | None = None, last: bool = True, readout: bool = True,
                 plots: bool = True):
        self.layers = None if layers is None else list(layers)
        self.samples, self.split, self.indices = samples, split, None if indices is None else list(indices)
        self.epochs, self.last, self.readout, self.plots = set(epochs or [0]), last, readout, plots
        self.recorded: list[int] = []  # the epochs recorded in this run folder, in order
        self.problem: str | None = None  # a plot that could not be drawn (the run goes on)
        self._split: str | None = None
        self._index: torch.Tensor | None = None

    # --- hooks ---------------------------------------------------------------------------
    def on_fit_start(self, state: FitState) -> None:
        encoded: dict[str, EncodedSplit] = state.extra.get("encoded", {})
        self._split = self.split or next((s for s in SPLIT_PREFERENCE if s in encoded and len(encoded[s])), None)
        if self._split is None or not len(encoded.get(self._split, ())):
            have = [s for s in SPLIT_PREFERENCE if s in encoded and len(encoded[s])]
            raise ValueError(f"SpikeRecorder.split is {self.split!r}, which has no samples in this run; "
                             f"allowed: {', '.join(have) or 'none (the run has no data)'}")
        split = encoded[self._split]
        if self.indices is not None:
            bad = [i for i in self.indices if i >= len(split)]
            if bad:
                raise ValueError(f"SpikeRecorder.indices must be below the {self._split} split's {len(split)} "
                                 f"samples, got {bad}")
            chosen = self.indices
        else:
            chosen = balanced_indices(split.targets, self.samples)
        self._index = torch.tensor(chosen, dtype=torch.long, device=split.targets.device)
        n_layers = len(getattr(state.model, "layers", ()))
        if self.layers is not None and n_layers:
            bad = [i for i in self.layers if not -n_layers <= i < n_layers]
            if bad:
                raise ValueError(f"SpikeRecorder.layers must be layer indices of a {n_layers}-layer model "
                                 f"(0 to {n_layers - 1}, or negative from the end), got {bad}")
        self._forget_after(state)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        if epoch in self.epochs or (self.last and epoch == state.epochs):
            self.record(state, epoch)

    def on_fit_end(self, state: FitState) -> None:
        if self.last and state.history and state.epoch not in self.recorded:
            self.record(state, state.epoch)

    def state_dict(self) -> dict:
        return {"recorded": list(self.recorded)} if self.recorded else {}

    def load_state_dict(self, state: dict) -> None:
        self.recorded = list(state.get("recorded", []))

    # --- recording -------------------------------------------------------------------------
    def _forget_after(self, state: FitState) -> None:
        """Drop recordings later than the restored epoch (all of them on a fresh start): the fit
        records those epochs again."""
        keep = -1 if state.resumed_from is None else state.resumed_from
        self.recorded = [e for e in self.recorded if e <= keep]
        if state.run_dir is None:
            return
        for epoch, path in recording_files(state.run_dir).items():
            if epoch > keep:
                path.unlink()
                for plot in self._plot_paths(state.run_dir, epoch):
                    plot.unlink(missing_ok=True)
        self.recorded = sorted(set(self.recorded) | {e for e in recording_files(state.run_dir) if e <= keep})

    @staticmethod
    def _plot_paths(run_dir: Path, epoch: int) -> tuple[Path, Path]:
        folder = Path(run_dir) / PLOTS
        return folder / f"raster_epoch_{epoch}.png", folder / f"traces_epoch_{epoch}.png"

    @torch.no_grad()
    def capture(self, state: FitState, epoch: int) -> Recording:
        """Run the model on the fixed samples and collect what the recording holds."""
        split = state.extra["encoded"][self._split]
        x, y, mask = split.batch(self._index)
        model = state.model
        training = model.training
        model.eval()
        try:
            output = model(x)
        finally:
            model.train(training)
        prediction = state.pipeline.loss.predict(loss_input(output, y, mask, epoch))
        n_layers = len(output.traces)
        chosen = range(n_layers) if self.layers is None else [i % n_layers for i in self.layers]
        layers = {f"layers.{i}": LayerRecording(_numpy(output.traces[i].out), _numpy(output.traces[i].membrane),
                                                bool(output.traces[i].spiking))
                  for i in dict.fromkeys(chosen) if _dense(output.traces[i].out) and _dense(output.traces[i].membrane)}
        dense = x.to_dense() if hasattr(x, "to_dense") else x
        trace = output.readout.trace if self.readout else None
        return Recording(epoch, self._split, self._index.cpu().numpy(), y.cpu().numpy(), prediction.cpu().numpy(),
                         _numpy(output.scores), layers, _step_ms(model),
                         _numpy(dense) if isinstance(dense, torch.Tensor) and dense.dim() == 3 else None,
                         _numpy(trace) if isinstance(trace, torch.Tensor) else None)

    def record(self, state: FitState, epoch: int) -> None:
        recording = self.capture(state, epoch)
        if epoch not in self.recorded:
            self.recorded.append(epoch)
        if state.run_dir is None:
            return
        save_recording(recording, recording_path(state.run_dir, epoch))
        if self.plots:
            raster, traces = self._plot_paths(state.run_dir, epoch)
            try:
                plot_raster(recording, raster)
                plot_traces(recording, traces)
            except Exception as exc:  # noqa: BLE001 (a figure must never cost a trained run)
                self.problem = f"could not draw {PLOTS}/ for epoch {epoch}: {type(exc).__name__}: {exc}"

    def __repr__(self) -> str:
        return f"SpikeRecorder(layers={self.layers}, samples={self.samples}, split={self.split!r})"


def _dense(value: object) -> bool:
    """Whether a trace holds a time-major ``[T, B, N]`` tensor (first-spike layers give spike times instead)."""
    return isinstance(value, torch.Tensor) and value.dim() == 3


def _numpy(tensor: torch.Tensor):
    return tensor.detach().to("cpu", torch.float32).numpy()


def _step_ms(model: torch.nn.Module) -> float:
    """The first layer's kernel step ``dt`` in ms; NaN when it has none."""
    layers = getattr(model, "layers", None)
    dt = getattr(getattr(layers[0], "kernel", None), "dt", None) if layers else None
    return float(dt) if isinstance(dt, (int, float)) and not isinstance(dt, bool) else float("nan")
