"""The outcome of a search: the Pareto front of its points (the best point for one objective)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from analysis.source import DB, Experiment
from analysis.stats import summarize


def non_dominated(values: pd.DataFrame, maximize: Sequence[bool]) -> pd.Series:
    """A boolean mask of the rows no other row dominates (at least as good everywhere, better once)."""
    signs = [1.0 if up else -1.0 for up in maximize]
    scores = values.to_numpy(dtype=float) * signs
    keep = []
    for i, row in enumerate(scores):
        dominated = ((scores >= row).all(axis=1) & (scores > row).any(axis=1))
        dominated[i] = False
        keep.append(not dominated.any())
    return pd.Series(keep, index=values.index)


def pareto_front(experiment: Experiment, group: str, objectives: Sequence[dict], db: DB = None,
                 version: int | None = None) -> pd.DataFrame:
    """The points of search ``group`` that are Pareto-optimal for ``objectives`` (each
    ``{metric, direction}``, metrics averaged over COMPLETED repeats), best first by the first
    objective; with one objective, the single best point."""
    metrics = [o["metric"] for o in objectives]
    frame = summarize(experiment, by=["trial", "group"], metrics=metrics, db=db, version=version)
    frame = frame[(frame["group"] == group) & (frame[f"{metrics[0]}_n"] > 0)]
    means = frame[[f"{m}_mean" for m in metrics]].dropna()
    if means.empty:
        return frame.iloc[0:0]
    maximize = [o.get("direction", "maximize") == "maximize" for o in objectives]
    front = frame.loc[means.index[non_dominated(means, maximize)]]
    front = front.sort_values(f"{metrics[0]}_mean", ascending=not maximize[0])
    return (front.head(1) if len(objectives) == 1 else front).reset_index(drop=True)
