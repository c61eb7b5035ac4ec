"""EpochProfiler: torch.profiler on chosen epochs, with a one-line summary of where the time went.

For each profiled epoch ``e`` the run folder gets ``profiler/epoch_<e>/``:

    profiler_output.txt   the split into the loop's phases, then the top operators by self CPU
                          time (self CUDA time too on a GPU) and by CPU memory
    trace.json.gz         the Chrome trace (https://ui.perfetto.dev or chrome://tracing)

and ``log.txt`` one line, e.g. ``profile of epoch 1: 20 batches in 0.41 s: data 1%, forward
38%, backward 52%, optimizer 6%, callbacks 1%, other 2%``. The phases are the loop's
``record_function`` ranges (``pipeline.phases``); a phase's time excludes the phases nested in
it (the optimizer's excludes the forward and backward of its closure). Times are host (CPU)
wall time: on a GPU, kernels that run asynchronously are counted where the host waits for them.
The profiled epoch's ``epoch_time_s`` includes the profiler's overhead while it records; the
files are written at the epoch's end, outside that time (a few seconds for 20 batches).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.callbacks.base import Callback
from pipeline.phases import PHASES, PREFIX
from pipeline.state import FitState

OUTPUT, TRACE = "profiler_output.txt", "trace.json.gz"


class EpochProfiler(Callback):
    """Profiles the first ``steps`` batches (all of the epoch, evaluation included, when
    ``steps`` is None or the epoch has fewer batches) of each epoch in ``epochs``.

    Args:
        folder: where ``epoch_<e>/`` go (``<run folder>/profiler``).
        epochs: the training epochs to profile (1 is the first).
        steps: batches per profiled epoch.
        row_limit: operators per table in ``profiler_output.txt``.
        note: writes the summary line into the run's log.
    """

    order = 99  # last in every hook: a profile ending at a hook includes the others' work

    def __init__(self, folder: str | Path, epochs: Iterable[int] = (1,), steps: int | None = 20,
                 row_limit: int = 30, note: Callable[[str], None] | None = None):
        self.folder, self.epochs, self.steps = Path(folder), set(epochs), steps
        self.row_limit, self.note = row_limit, note
        self.profile: Any = None  # recording
        self.finished: Any = None  # recorded, its files not written yet
        self.summary: str | None = None  # the latest profile's line
        self._epoch, self._batches, self._t0, self._seconds, self._device = 0, 0, 0.0, 0.0, "cpu"

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        if epoch in self.epochs and state.run_dir is not None:
            self.start(epoch, str(getattr(state.pipeline, "device", "cpu")))

    def on_batch_end(self, state: FitState, batch: int, result) -> None:
        if self.profile is not None:
            self._batches += 1
            if self.steps is not None and self._batches >= self.steps:
                self.stop()

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        if self.profile is not None:
            self.stop()
        if self.finished is not None:
            self.write()

    def on_fit_end(self, state: FitState) -> None:
        self.close()

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        self.close()

    def start(self, epoch: int, device: str) -> None:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
        self.profile = profile(activities=activities, profile_memory=True)
        self._epoch, self._batches, self._device = epoch, 0, device
        self.profile.__enter__()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        """End the recording (its files are written at the epoch's end)."""
        self._seconds = time.perf_counter() - self._t0
        self.finished, self.profile = self.profile, None
        self.finished.__exit__(None, None, None)

    def write(self) -> None:
        """The finished profile's files and summary line."""
        profile, self.finished, seconds = self.finished, None, self._seconds
        folder = self.folder / f"epoch_{self._epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        events = profile.events()
        phases = phase_seconds(events)
        what = f"{self._batches} batches" + (" and the evaluation" if phases.get("evaluation") else "")
        split = phase_split(phases, seconds)
        self.summary = f"profile of epoch {self._epoch}: {what} in {seconds:.2f} s: {split} ({folder})"
        averages = profile.key_averages()
        tables = [f"epoch {self._epoch}, {what}, {seconds:.3f} s wall, device {self._device}",
                  f"phases (host wall time, nested phases excluded): {split}", "",
                  "top operators by self CPU time:", averages.table(sort_by="self_cpu_time_total",
                                                                    row_limit=self.row_limit)]
        if self._device.startswith("cuda"):
            tables += ["top operators by self CUDA time:",
                       averages.table(sort_by="self_device_time_total", row_limit=self.row_limit)]
        tables += ["top operators by CPU memory allocated:",
                   averages.table(sort_by="self_cpu_memory_usage", row_limit=self.row_limit)]
        (folder / OUTPUT).write_text("\n".join(tables) + "\n", encoding="utf-8")
        profile.export_chrome_trace(str(folder / TRACE))
        if self.note is not None:
            self.note(self.summary)

    def close(self) -> None:
        """Drop a profile still recording or not written (the fit failed inside it)."""
        if self.profile is not None:
            profile, self.profile = self.profile, None
            profile.__exit__(None, None, None)
        self.finished = None

    def __repr__(self) -> str:
        return f"EpochProfiler(epochs={sorted(self.epochs)}, steps={self.steps})"


def phase_seconds(events: Iterable[Any]) -> dict[str, float]:
    """Seconds in each phase of ``pipeline.phases`` (profiler events), nested phases excluded."""
    totals = dict.fromkeys(PHASES, 0.0)
    for event in events:
        name = _phase(event)
        if name is not None:
            inner = sum(child.cpu_time_total for child in _nearest_phases(event))
            totals[name] += max(event.cpu_time_total - inner, 0.0) / 1e6
    return totals


def phase_split(phases: dict[str, float], seconds: float) -> str:
    """``data 1%, forward 38%, ..., other 2%`` of ``seconds``; evaluation only when profiled."""
    shown = {k: v for k, v in phases.items() if k != "evaluation" or v > 0}
    shown["other"] = max(seconds - sum(phases.values()), 0.0)
    return ", ".join(f"{k} {100 * v / seconds:.0f}%" for k, v in shown.items()) if seconds > 0 else "nothing"


def _phase(event: Any) -> str | None:
    name = event.name
    return name[len(PREFIX):] if name.startswith(PREFIX) and name[len(PREFIX):] in PHASES else None


def _nearest_phases(event: Any) -> Iterator[Any]:
    for child in event.cpu_children:
        if _phase(child) is not None:
            yield child
        else:
            yield from _nearest_phases(child)
