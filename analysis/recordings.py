"""A run's spike recordings (SpikeRecorder) for notebooks and reports: read them from the run
folder, draw rasters and membrane traces.

    from analysis.recordings import run_recordings, plot_raster, plot_traces
    recordings = run_recordings("outputs/quick_tour/tau10/repeat_0")   # epoch -> Recording
    last = recordings[max(recordings)]
    last.layers["layers.0"].out.shape                                  # [T, S, N] spikes
    plot_raster(last)                                                  # a matplotlib Figure

The file layout is documented in :mod:`tools.recordings`; a run without a SpikeRecorder has no
recordings (``run_recordings`` returns an empty dict).
"""
from __future__ import annotations

from pathlib import Path

from tools.recordings import (LayerRecording, Recording, load_recording, load_run_recordings, plot_raster,
                              plot_traces, recording_files)

__all__ = ["LayerRecording", "Recording", "draw_recordings", "latest_recording", "load_recording", "plot_raster",
           "plot_traces", "recording_files", "run_recordings"]


def run_recordings(run_dir: str | Path) -> dict[int, Recording]:
    """Every recording of the run folder ``run_dir``, epoch -> Recording (empty without any)."""
    return load_run_recordings(run_dir)


def latest_recording(run_dir: str | Path) -> Recording | None:
    """The recording of the run's last recorded epoch, None when it has none."""
    files = recording_files(run_dir)
    return load_recording(files[max(files)]) if files else None


def draw_recordings(run_dir: str | Path, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """``<prefix>raster_epoch_<k>.png`` and ``<prefix>traces_epoch_<k>.png`` of the run's last
    recording into ``out_dir`` (for a report); the files written (none without a recording)."""
    recording = latest_recording(run_dir)
    if recording is None:
        return []
    out = Path(out_dir)
    drawn = [plot_raster(recording, out / f"{prefix}raster_epoch_{recording.epoch}.png"),
             plot_traces(recording, out / f"{prefix}traces_epoch_{recording.epoch}.png")]
    return [path for path in drawn if path is not None]
