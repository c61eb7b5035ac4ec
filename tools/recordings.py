"""Spike recordings: the file a run's SpikeRecorder writes, its reader, and raster and trace plots.

One file per recorded epoch, ``<run folder>/recordings/epoch_<k>.npz`` (numpy ``savez_compressed``),
holding S fixed samples of one split, time-major like the model's traces::

    epoch            ()          int, the epoch the model had finished (0: untrained)
    split            ()          str, "train", "val" or "test"
    sample_index     [S]         int, the samples' positions in that split
    label            [S]         int, the class of each sample ([S, T] for per-step targets)
    prediction       [S]         int, the model's prediction (same shape as label)
    scores           [S, C]      float32, the readout's class scores
    dt               ()          float, ms per time step (NaN: unknown)
    layer_names      [L]         str, the recorded layers by module name ("layers.0", ...)
    <name>.out       [T, S, N]   float32, the layer's output: spikes (0/1) for a spiking layer
    <name>.membrane  [T, S, N]   float32, its membrane potential
    <name>.spiking   ()          bool, whether <name>.out holds spikes
    input            [T, S, F]   float32, the encoded input (absent when it is not a dense raster)
    readout.membrane [T, S, C]   float32, the readout's own membrane (absent without one)

This module is plain numpy and matplotlib (Agg, imported when a plot is drawn), so the pipeline
that writes recordings and the analysis that reads them share it.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.figures import agg_figure, save_figure

RECORDINGS = "recordings"  # the folder in a run folder
_FILE = re.compile(r"^epoch_(\d+)\.npz$")


@dataclass(frozen=True)
class LayerRecording:
    """One layer's activity for the recorded samples: ``out`` and ``membrane`` ``[T, S, N]``."""

    out: np.ndarray
    membrane: np.ndarray
    spiking: bool


@dataclass(frozen=True)
class Recording:
    """What one ``recordings/epoch_<k>.npz`` holds (see the module docstring for the layout)."""

    epoch: int
    split: str
    sample_index: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    scores: np.ndarray
    layers: dict[str, LayerRecording]
    dt: float = math.nan
    input: np.ndarray | None = None
    readout: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return int(len(self.sample_index))

    @property
    def steps(self) -> int:
        """T, the number of time steps."""
        first = next(iter(self.layers.values()), None)
        return int(first.membrane.shape[0]) if first is not None else 0


def recording_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / RECORDINGS / f"epoch_{int(epoch)}.npz"


def save_recording(recording: Recording, path: str | Path) -> Path:
    """Write ``recording`` to ``path`` through a temporary file (a kill never leaves half a file)."""
    arrays: dict[str, Any] = {
        "epoch": np.int64(recording.epoch), "split": np.str_(recording.split),
        "sample_index": np.asarray(recording.sample_index, dtype=np.int64),
        "label": np.asarray(recording.label, dtype=np.int64),
        "prediction": np.asarray(recording.prediction, dtype=np.int64),
        "scores": np.asarray(recording.scores, dtype=np.float32), "dt": np.float64(recording.dt),
        "layer_names": np.array(list(recording.layers), dtype=np.str_),
    }
    for name, layer in recording.layers.items():
        arrays[f"{name}.out"] = np.asarray(layer.out, dtype=np.float32)
        arrays[f"{name}.membrane"] = np.asarray(layer.membrane, dtype=np.float32)
        arrays[f"{name}.spiking"] = np.bool_(layer.spiking)
    if recording.input is not None:
        arrays["input"] = np.asarray(recording.input, dtype=np.float32)
    if recording.readout is not None:
        arrays["readout.membrane"] = np.asarray(recording.readout, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)
    return path


def load_recording(path: str | Path) -> Recording:
    """A recording read back from its ``.npz`` file (no pickled objects are loaded)."""
    with np.load(Path(path), allow_pickle=False) as data:
        names = [str(n) for n in data["layer_names"]]
        layers = {name: LayerRecording(data[f"{name}.out"], data[f"{name}.membrane"], bool(data[f"{name}.spiking"]))
                  for name in names}
        return Recording(int(data["epoch"]), str(data["split"]), data["sample_index"], data["label"],
                         data["prediction"], data["scores"], layers, float(data["dt"]),
                         data["input"] if "input" in data.files else None,
                         data["readout.membrane"] if "readout.membrane" in data.files else None)


def recording_files(run_dir: str | Path) -> dict[int, Path]:
    """The recordings of a run folder, epoch -> file, by epoch (empty when it has none)."""
    folder = Path(run_dir) / RECORDINGS
    found = {int(m.group(1)): p for p in folder.glob("epoch_*.npz") if (m := _FILE.match(p.name))}
    return dict(sorted(found.items()))


def load_run_recordings(run_dir: str | Path) -> dict[int, Recording]:
    """Every recording of a run folder, epoch -> Recording."""
    return {epoch: load_recording(path) for epoch, path in recording_files(run_dir).items()}


# --- plots ---------------------------------------------------------------------------------
def _time_axis(recording: Recording, steps: int) -> tuple[np.ndarray, str]:
    if math.isfinite(recording.dt) and recording.dt > 0:
        return np.arange(steps) * recording.dt, "time (ms)"
    return np.arange(steps, dtype=float), "time step"


def _title(recording: Recording, s: int) -> str:
    label, prediction = recording.label[s], recording.prediction[s]
    if np.ndim(label) == 0:
        return f"sample {int(recording.sample_index[s])}: class {int(label)}, predicted {int(prediction)}"
    return f"sample {int(recording.sample_index[s])}"


def _figure(rows: int, cols: int, width: float = 3.4, height: float = 2.4):
    figure = agg_figure((width * cols, height * rows + 0.6))
    return figure, figure.subplots(rows, cols, squeeze=False)


def raster_panels(recording: Recording) -> list[tuple[str, np.ndarray]]:
    """(panel name, ``[T, S, N]`` activity) of what a raster shows: the input when it is a spike
    raster, then every spiking layer."""
    panels = []
    if recording.input is not None and np.isin(recording.input, (0.0, 1.0)).all():
        panels.append(("input", recording.input))
    panels += [(name, layer.out) for name, layer in recording.layers.items() if layer.spiking]
    return panels


def plot_raster(recording: Recording, path: str | Path | None = None, max_samples: int = 4) -> Any:
    """Spike rasters: one row per sample (the first ``max_samples``), one column per spiking
    population (input, then each spiking layer); a tick per spike at (time, neuron). Writes
    ``path`` and returns it, or returns the Figure without a path; None when nothing recorded
    spikes."""
    panels = raster_panels(recording)
    if not panels:
        return None
    samples = min(recording.n_samples, max_samples)
    figure, axes = _figure(samples, len(panels))
    for s in range(samples):
        for c, (name, activity) in enumerate(panels):
            ax = axes[s][c]
            steps, neurons = np.nonzero(activity[:, s, :] > 0)
            time, unit = _time_axis(recording, activity.shape[0])
            ax.scatter(time[steps], neurons, s=2, marker="|", color="black", linewidths=0.8)
            step = time[1] - time[0] if len(time) > 1 else 1.0
            ax.set_xlim(time[0] - step / 2, time[-1] + step / 2)
            ax.set_ylim(-0.5, activity.shape[2] - 0.5)
            ax.set_title(f"{name}: {len(steps)} spikes", fontsize="small")
            if c == 0:
                ax.set_ylabel(f"{_title(recording, s)}\nneuron", fontsize="small")
            if s == samples - 1:
                ax.set_xlabel(unit)
    figure.suptitle(f"spike rasters, {recording.split} split, epoch {recording.epoch}")
    return _save(figure, path)


def plot_traces(recording: Recording, path: str | Path | None = None, max_samples: int = 4, neurons: int = 3) -> Any:
    """Membrane traces: one row per sample, one column per recorded layer (its ``neurons`` most
    active neurons: most spikes, then highest peak membrane) and one for the readout's membrane
    (every class; the sample's class drawn thick). Writes ``path`` and returns it, or returns
    the Figure without a path; None when nothing was recorded."""
    columns: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        (name, layer.membrane, layer.out if layer.spiking else None) for name, layer in recording.layers.items()]
    if recording.readout is not None:
        columns.append(("readout", recording.readout, None))
    if not columns:
        return None
    samples = min(recording.n_samples, max_samples)
    figure, axes = _figure(samples, len(columns))
    for s in range(samples):
        for c, (name, membrane, spikes) in enumerate(columns):
            ax = axes[s][c]
            time, unit = _time_axis(recording, membrane.shape[0])
            v = membrane[:, s, :]
            if name == "readout":
                label = recording.label[s]
                for k in range(v.shape[1]):
                    thick = np.ndim(label) == 0 and k == int(label)
                    ax.plot(time, v[:, k], linewidth=1.8 if thick else 0.7, alpha=1.0 if thick else 0.5,
                            label=f"class {k}" if thick else None)
            else:
                counts = spikes[:, s, :].sum(axis=0) if spikes is not None else np.zeros(v.shape[1])
                order = np.lexsort((-v.max(axis=0), -counts))[:neurons]
                for n in order:
                    ax.plot(time, v[:, n], linewidth=0.9, label=f"neuron {n}")
            ax.set_title(f"{name} membrane", fontsize="small")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(frameon=False, fontsize="x-small")
            if c == 0:
                ax.set_ylabel(f"{_title(recording, s)}\nmembrane", fontsize="small")
            if s == samples - 1:
                ax.set_xlabel(unit)
    figure.suptitle(f"membrane traces, {recording.split} split, epoch {recording.epoch}")
    return _save(figure, path)


def _save(figure: Any, path: str | Path | None) -> Any:
    return figure if path is None else save_figure(figure, path, dpi=90)
