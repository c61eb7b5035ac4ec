"""The ``mean ± std`` table that ``run`` prints at its end and ``show`` prints on demand."""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping


def mean_std_cell(mean: float | None, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"


def summary_table(records: Iterable[Mapping[str, Any]], metrics: list[str], by: str = "trial") -> list[str]:
    """Rows of ``by``, then ``n`` and ``mean ± std`` for each metric (records as analysis.summarize's
    rows, ``<metric>_n``, ``<metric>_mean``, ``<metric>_std``); aligned columns, one line each."""
    header = [by, "n"] + metrics
    rows = [[str(r[by]), str(int(r[f"{metrics[0]}_n"])) if metrics else "0"] +
            [mean_std_cell(r[f"{m}_mean"], r[f"{m}_std"]) for m in metrics] for r in records]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header] + rows]
