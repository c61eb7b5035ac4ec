"""What an experiment's sweeps are made of, for plots that must not mix them up.

A trial is a **grid point** (a ``sweep:`` entry of trials.yaml), a **search sample** (a
``search:`` entry: random or TPE) or a **plain** trial. Grid means can be joined by a line along
a swept param; search samples are single draws at scattered values and are only ever drawn as
points. A param gets a log axis when trials.yaml searched it log-uniformly or generated it with
``logspace``, or when its positive values span more than 1.5 decades (:func:`wants_log_axis`).
Axis labels carry units where the param's name says them (``tau_*``, ``dt``, delays: ms).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from experiment.store import ExperimentRecord, ExperimentStore

GRID, SEARCH, PLAIN = "grid", "search", "plain"
LOG_SPAN = 10 ** 1.5  # positive values whose largest is over 1.5 decades above the smallest: log axis
_MS = re.compile(r"(^|[._\]])(tau\w*|dt|delay\w*|t_ref\w*|refractory\w*|\w*_ms)$")


@dataclass(frozen=True)
class SweepLayout:
    """Per trial name its kind (grid, search, plain) and swept param paths; the paths trials.yaml
    asks to be log-scaled."""

    kind: dict[str, str]
    swept: dict[str, tuple[str, ...]]
    group_params: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # group -> (kind, params)
    log_paths: frozenset[str] = field(default_factory=frozenset)

    def trials(self, kind: str, param: str | None = None) -> list[str]:
        """The trials of ``kind`` (that sweep ``param``, if given), in trial order."""
        return [name for name, k in self.kind.items() if k == kind and (param is None or param in self.swept[name])]

    def groups(self, kind: str) -> dict[str, tuple[str, ...]]:
        """Grid or search groups (trials.yaml entries) -> their swept params, in order."""
        return {group: params for group, (k, params) in self.group_params.items() if k == kind}


def sweep_layout(store: ExperimentStore, record: ExperimentRecord) -> SweepLayout:
    """The :class:`SweepLayout` of one experiment version, from its trials and trials.yaml."""
    entries = {entry.get("name"): entry for entry in (record.files or {}).get("trials", []) or []
               if isinstance(entry, dict)}
    kind, swept, groups, log_paths = {}, {}, {}, set()
    for entry in entries.values():
        for path, spec in (entry.get("search") or {}).get("params", {}).items():
            if isinstance(spec, dict) and "loguniform" in spec:
                log_paths.add(path)
        for path, spec in (entry.get("sweep") or {}).items() if isinstance(entry.get("sweep"), dict) else ():
            if isinstance(spec, dict) and "logspace" in spec:
                log_paths.add(path)
    for trial in store.trials(record.id):
        group = trial.group_name or trial.name
        entry = entries.get(group, {})
        point = tuple((trial.sweep_point or {}).keys())
        kind[trial.name] = SEARCH if entry.get("search") else (GRID if point else PLAIN)
        swept[trial.name] = point
        if point:
            groups.setdefault(group, (kind[trial.name], point))
    return SweepLayout(kind, swept, groups, frozenset(log_paths))


def wants_log_axis(values: Sequence[float] | np.ndarray, path: str | None = None,
                   layout: SweepLayout | None = None) -> bool:
    """True for positive finite values that trials.yaml log-scaled (``path`` in ``layout``) or
    whose largest is more than 1.5 decades above the smallest."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2 or not np.all(values > 0):
        return False
    if layout is not None and path is not None and path.removeprefix("param.") in layout.log_paths:
        return bool(values.max() > values.min())
    return bool(values.max() / values.min() > LOG_SPAN)


def unit(name: str) -> str | None:
    """The unit a param's or metric's name implies: ms for time constants, time steps and delays,
    s for ``*_time_s``/``duration_s``; None when the name says none."""
    if _MS.search(name):
        return "ms"
    if name.endswith("_s"):
        return "s"
    return None


def axis_label(name: str) -> str:
    """``model.layers[0].kernel.tau_m (ms)``; accuracies say they are fractions."""
    from analysis.intervals import metric_range

    if (found := unit(name)) is not None:
        return f"{name} ({found})"
    if metric_range(name) == (0.0, 1.0):
        return f"{name} (fraction)"
    return name

