"""What a trained run's neurons do: spike rasters and membrane traces of one run folder.

The activity comes from the run's own spike recording when it has one (the SpikeRecorder
callback's ``recordings/epoch_<k>.npz``, the latest epoch), and otherwise from re-running the
saved model (``checkpoints/best.pt``, rebuilt by experiment.trained_run) on a few samples of each
class of a split. Either way it is a :class:`tools.recordings.Recording`, drawn by
``tools.recordings.plot_raster`` and ``plot_traces``; :func:`plot_run_activity` writes both, and
the report shows them for the best run of an experiment whose model spikes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tools.recordings import LayerRecording, Recording, load_run_recordings, plot_raster, plot_traces

RASTER, TRACES = "activity_raster.png", "activity_traces.png"


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().to("cpu").float().numpy()


def _dense_input(run: Any, split: str, index: np.ndarray, x: Any) -> np.ndarray | None:
    """Spike-time inputs (``SpikeTimes``: [B, N] times) as a ``[T, S, N]`` 0/1 raster; None for
    other input forms."""
    times = getattr(x, "times", None)
    if times is None or getattr(times, "dim", lambda: 0)() != 2:
        return None
    raster, steps = run.input_raster(split, index)
    dense = np.zeros((int(steps), len(index), times.shape[1]), dtype=np.float32)
    for s, (t, n) in enumerate(raster):
        dense[np.asarray(t, dtype=int), s, np.asarray(n, dtype=int)] = 1.0
    return dense


def rerun_activity(run_dir: str | Path, checkpoint: str = "best", split: str = "test", per_class: int = 1,
                   max_samples: int = 4) -> Recording:
    """The activity of the saved model of ``run_dir`` on the first ``per_class`` samples of each
    class of ``split`` (at most ``max_samples``; the training split when ``split`` is empty), as
    a Recording whose ``epoch`` is the checkpoint's. Raises RunFolderError (a FileNotFoundError)
    for a folder without config or checkpoint."""
    import torch

    from experiment.trained_run import load_trained_run

    run = load_trained_run(run_dir, checkpoint)
    if not len(run.encoded[split]):
        split = "train"
    labels = run.encoded[split].targets.cpu().numpy()
    flat = labels if labels.ndim == 1 else labels[:, 0]
    chosen = np.concatenate([np.flatnonzero(flat == c)[:per_class] for c in np.unique(flat)])[:max_samples]
    with torch.no_grad():
        x = run.inputs(split, chosen)
        output = run.model(x)
    layers = {f"layers.{i}": LayerRecording(_numpy(t.out), _numpy(t.membrane), bool(t.spiking))
              for i, t in enumerate(output.traces)
              if t.membrane is not None and isinstance(t.out, torch.Tensor) and t.out.dim() == 3}
    dense = _numpy(x) if isinstance(x, torch.Tensor) and x.dim() == 3 else _dense_input(run, split, chosen, x)
    readout = output.readout.trace
    return Recording(run.epoch, split, chosen, labels[chosen], _numpy(output.scores.argmax(dim=1)).astype(int),
                     _numpy(output.scores), layers, float(getattr(run, "dt", math.nan)),
                     dense, None if readout is None else _numpy(readout))


def run_activity(run_dir: str | Path, checkpoint: str = "best", split: str = "test") -> tuple[Recording, str]:
    """The run's latest spike recording if it has one, else :func:`rerun_activity`; with a note
    of where it came from."""
    recordings = load_run_recordings(run_dir)
    if recordings:
        epoch = max(recordings)
        return recordings[epoch], f"the run's spike recording (recordings/epoch_{epoch}.npz)"
    recording = rerun_activity(run_dir, checkpoint, split)
    return recording, f"the {checkpoint} checkpoint (epoch {recording.epoch}) re-run on {recording.n_samples} " \
                      f"{recording.split} samples (the run has no spike recording)"


def plot_run_activity(run_dir: str | Path, out_dir: str | Path | None = None, checkpoint: str = "best",
                      split: str = "test") -> tuple[list[Path], str]:
    """``activity_raster.png`` and ``activity_traces.png`` of :func:`run_activity` in ``out_dir``
    (default ``<run_dir>/plots``); returns the files written (none where nothing spiked or was
    recorded) and where the activity came from."""
    recording, source = run_activity(run_dir, checkpoint, split)
    folder = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    paths = [plot_raster(recording, folder / RASTER), plot_traces(recording, folder / TRACES)]
    return [p for p in paths if p is not None], source


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    """Rasters and traces of the best COMPLETED run (by best_val_acc, else final_train_acc) whose
    folder is on this machine, for experiments whose models have spiking layers."""
    from analysis.frames import read_run_table
    from experiment.run_folder import RunFolderError

    table = read_run_table(record, store)
    metric = next((m for m in ("best_val_acc", "final_train_acc") if m in table.summary_columns), None)
    kernels = [c for c in table.runs.columns if c.endswith(".kernel.type") or c.endswith(".kernel")]
    if metric is None or not kernels:
        return []
    done = table.completed().sort_values(metric, ascending=False, kind="stable")
    for run in done.itertuples():
        if not run.output_dir or not Path(run.output_dir).is_dir():
            continue
        try:
            paths, source = plot_run_activity(run.output_dir, folder / f"activity_{run.run_id}")
        except (RunFolderError, FileNotFoundError):
            continue
        what = f"best run by {metric}: {run.trial} repeat {run.repeat}"
        return [(f"{what}, {'spike rasters' if i == 0 and 'raster' in p.name else 'membrane traces'}", p,
                 f"from {source}") for i, p in enumerate(paths)]
    return []


def _register() -> None:
    from analysis.report import REPORT_SECTIONS

    REPORT_SECTIONS["spike_activity"] = _report_section


_register()
