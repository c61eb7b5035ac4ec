"""Plots of one trained tempotron run: input spike raster, membrane voltage against the
threshold with ``t_max`` marked, and the kernel's simulated response against its analytic form.

The run is read back from its folder by ``experiment.trained_run.load_trained_run`` (the
pipeline rebuilt from its ``config.yaml``, the checkpoint's weights loaded). Figures are drawn
on matplotlib's Agg canvas (no pyplot) and written to ``<run folder>/plots/`` unless another
folder is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from analysis.plots import _colors, _save
from experiment.trained_run import TrainedRun, load_trained_run
from tools.figures import agg_figure

Checkpoint = Literal["best", "last"]


def _figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Any, np.ndarray]:
    figure = agg_figure(size)
    return figure, np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()


def _examples(run: TrainedRun, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` patterns of each class in ``split``: indices and labels."""
    labels = run.encoded[split].targets.cpu().numpy()
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    index = np.concatenate(chosen) if chosen else np.zeros(0, dtype=int)
    return index, labels[index]


def _split(run: TrainedRun, split: str | None) -> str:
    if split is not None:
        return split
    return "train" if len(run.encoded["train"]) else "test"


def plot_input_raster(run: TrainedRun, out: str | Path | None = None, split: str | None = None,
                      per_class: int = 1) -> Path:
    """Input spikes (time step against afferent) of the first ``per_class`` patterns of each class."""
    split = _split(run, split)
    index, labels = _examples(run, split, per_class)
    raster, T = run.input_raster(split, index)
    dt = run.dt
    figure, axes = _figure(1, len(index), (3.2 * len(index) + 0.6, 3.6))
    for ax, (t, n), label, i in zip(axes, raster, labels, index):
        ax.scatter(t * dt, n, s=2, color="black", linewidths=0)
        ax.set(xlim=(0, T * dt), xlabel="time (ms)", title=f"{split} pattern {i}, label {label}")
    axes[0].set_ylabel("afferent")
    return _save(figure, out if out is not None else run.plots / "input_raster.png")


def plot_membrane(run: TrainedRun, out: str | Path | None = None, split: str | None = None,
                  per_class: int = 3) -> Path:
    """Membrane voltage of the trained (last) layer against the threshold for ``per_class``
    patterns of each class, ``t_max`` marked. One panel per class; with one output per class the
    panel of class c shows output c, with a single output (fire / stay silent) that output."""
    import torch

    split = _split(run, split)
    index, labels = _examples(run, split, per_class)
    with torch.no_grad():
        output = run.model(run.inputs(split, index))
    v = output.traces[-1].membrane.detach().cpu().numpy()  # [T, B, O]
    t_max = output.readout.time_index
    t_max = v.argmax(axis=0) if t_max is None else t_max.cpu().numpy()  # [B, O]
    time = np.arange(v.shape[0]) * run.dt
    classes = list(dict.fromkeys(labels.tolist()))
    columns = min(len(classes), 5)
    rows = -(-len(classes) // columns)
    figure, axes = _figure(rows, columns, (3.4 * columns + 0.4, 2.9 * rows + 0.4))
    colors = _colors(max(per_class, 1))
    for ax, c in zip(axes, classes):
        o = 0 if v.shape[2] == 1 else int(c)
        members = np.flatnonzero(labels == c)
        for color, b in zip(colors, members):
            ax.plot(time, v[:, b, o], color=color, linewidth=1, label=f"pattern {index[b]}")
            k = int(t_max[b, o])
            ax.plot(time[k], v[k, b, o], marker="v", color=color, markersize=7)
            ax.axvline(time[k], color=color, linewidth=0.6, linestyle=":")
        ax.axhline(run.v_th, color="red", linewidth=1, linestyle="--", label="v_th")
        target = "fire" if v.shape[2] == 1 and int(c) == 1 else ("silent" if v.shape[2] == 1 else f"output {o}")
        ax.set(title=f"label {c} ({target})", xlabel="time (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in axes[len(classes):]:
        ax.set_visible(False)
    axes[0].set_ylabel("membrane V(t); t_max marked")
    return _save(figure, out if out is not None else run.plots / "membrane.png")


def plot_kernel_response(kernel: Any, T: int = 100, out: str | Path = "kernel_response.png") -> Path:
    """A unit input at step 0 run through ``kernel.trace`` (simulated, markers) against the
    kernel's analytic impulse response (line), and their difference."""
    import torch

    x = torch.zeros(T, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    with torch.no_grad():
        simulated = kernel.trace(x).membrane[:, 0, 0].numpy()
    analytic = kernel.impulse_response(T, dtype=torch.float64).numpy()
    dt = float(getattr(kernel, "dt", 1.0))
    time = np.arange(T) * dt
    figure, (response, error) = _figure(1, 2, (9.5, 3.6))
    response.plot(time, analytic, color="black", linewidth=1.5, label="analytic impulse response")
    response.plot(time, simulated, linestyle="none", marker="o", markersize=3, color="tab:orange",
                  label=f"simulated ({type(kernel).__name__})")
    response.set(xlabel="time since the input spike (ms)", ylabel="membrane", title="kernel response")
    response.grid(alpha=0.3)
    response.legend(fontsize="small")
    error.plot(time, simulated - analytic, color="tab:blue")
    error.set(xlabel="time since the input spike (ms)", ylabel="simulated - analytic",
              title=f"max |difference| = {np.max(np.abs(simulated - analytic)):.2e}")
    error.grid(alpha=0.3)
    return _save(figure, out)


def plot_tempotron_run(run_dir: str | Path, out_dir: str | Path | None = None,
                       checkpoint: Checkpoint | str = "best", per_class: int = 3) -> list[Path]:
    """All three plots of a trained tempotron run: ``input_raster.png``, ``membrane.png`` and
    ``kernel_response.png`` in ``out_dir`` (default ``<run_dir>/plots``); returns the files."""
    run = load_trained_run(run_dir, checkpoint)
    folder = Path(out_dir) if out_dir is not None else run.plots
    return [plot_input_raster(run, folder / "input_raster.png"),
            plot_membrane(run, folder / "membrane.png", per_class=per_class),
            plot_kernel_response(run.model.layers[-1].kernel, out=folder / "kernel_response.png")]
