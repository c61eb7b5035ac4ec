"""Pareto front by hand: which points survive, for both directions."""
from __future__ import annotations

import pandas as pd

from analysis.search import non_dominated


def test_dominated_points_are_dropped():
    # maximise acc, minimise spikes
    frame = pd.DataFrame({"acc": [0.90, 0.80, 0.95, 0.85, 0.95, 0.70],
                          "spikes": [10.0, 5.0, 20.0, 12.0, 25.0, 5.0]}, index=list("abcdef"))
    # d (0.85, 12) is dominated by a (0.90, 10); e (0.95, 25) by c (0.95, 20); f (0.70, 5) by b (0.80, 5)
    mask = non_dominated(frame, [True, False])
    assert mask.to_dict() == {"a": True, "b": True, "c": True, "d": False, "e": False, "f": False}


def test_ties_do_not_dominate_and_directions_flip():
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0], "y": [3.0, 3.0, 4.0]})
    assert non_dominated(frame, [True, True]).tolist() == [False, False, True]  # (2, 4) is larger in both
    assert non_dominated(frame, [False, False]).tolist() == [True, True, False]  # equal rows keep each other
    assert non_dominated(frame, [True, False]).tolist() == [True, True, True]  # a trade-off: nobody dominates
