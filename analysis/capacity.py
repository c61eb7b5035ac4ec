"""The tempotron capacity curve: how often random patterns are learned perfectly, against the load.

A capacity experiment sweeps the number of patterns ``P`` (``data.size``) for one or more numbers
of afferents ``N`` (``data.input_size``), several repeats each; the load is ``alpha = P / N``. A
run is *perfect* when its training accuracy reached 1 within its epoch budget
(``best_train_acc >= 1``). Per N and alpha, :func:`capacity_curve` gives the fraction of perfect
runs with its Wilson 95% interval and the mean final training accuracy with its Student-t 95% CI
over repeats; :func:`estimate_alpha_c` finds the load where the fraction of perfect runs crosses
one half; :func:`plot_capacity_curve` draws both curves (the accuracy with a bootstrap band that
stays in [0, 1], analysis.intervals). Only COMPLETED runs count.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.frames import read_run_table
from analysis.plots import _colors, _report_dir, _save, _title
from analysis.report import REPORT_SECTIONS
from analysis.source import DB, Experiment
from analysis.stats import ci95_halfwidth
from tools.figures import agg_figure

Z95 = 1.959963984540054  # two-sided 95% normal quantile
N_COLUMN, P_COLUMN = "data.input_size", "data.size"
PERFECT_METRIC, ACC_METRIC = "best_train_acc", "final_train_acc"


def wilson_interval(successes: np.ndarray | int, n: np.ndarray | int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (95% by default); NaN where n = 0."""
    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def capacity_curve(experiment: Experiment, db: DB = None, version: int | None = None,
                   threshold: float = 1.0) -> pd.DataFrame:
    """One row per (N, alpha), sorted: ``N, P, alpha, n, n_perfect, perfect_frac, perfect_lo,
    perfect_hi, final_train_acc_mean, final_train_acc_std, final_train_acc_ci95``.

    ``n`` counts the COMPLETED runs; a run is perfect when ``best_train_acc >= threshold``;
    ``perfect_lo/hi`` is the Wilson 95% interval of ``perfect_frac``; ``final_train_acc_ci95`` the
    half-width of the Student-t 95% CI of the mean (NaN for fewer than two runs)."""
    table = read_run_table(experiment, db, version)
    table.check_columns([N_COLUMN, P_COLUMN, PERFECT_METRIC, ACC_METRIC], "a capacity experiment's runs")
    runs = table.completed()
    frame = pd.DataFrame({"N": runs[N_COLUMN].astype(int), "P": runs[P_COLUMN].astype(int),
                          "perfect": runs[PERFECT_METRIC] >= threshold, "acc": runs[ACC_METRIC]})
    grouped = frame.groupby(["N", "P"], sort=True)
    out = grouped.agg(n=("perfect", "size"), n_perfect=("perfect", "sum"), final_train_acc_mean=("acc", "mean"),
                      final_train_acc_std=("acc", "std")).reset_index()
    out.insert(2, "alpha", out["P"] / out["N"])
    out["n_perfect"] = out["n_perfect"].astype(int)
    out["perfect_frac"] = out["n_perfect"] / out["n"]
    out["perfect_lo"], out["perfect_hi"] = wilson_interval(out["n_perfect"], out["n"])
    out["final_train_acc_ci95"] = ci95_halfwidth(out["final_train_acc_std"], out["n"])
    columns = ["N", "P", "alpha", "n", "n_perfect", "perfect_frac", "perfect_lo", "perfect_hi",
               "final_train_acc_mean", "final_train_acc_std", "final_train_acc_ci95"]
    return out[columns].sort_values(["N", "alpha"], kind="stable").reset_index(drop=True)


def _crossing(alpha: np.ndarray, fraction: np.ndarray, level: float = 0.5) -> float:
    """The first load where ``fraction`` drops from >= level to < level, linearly interpolated
    between the two loads around it; NaN if it never does (or is below ``level`` from the start)."""
    for k in range(len(alpha) - 1):
        if fraction[k] >= level > fraction[k + 1]:
            a0, a1, f0, f1 = alpha[k], alpha[k + 1], fraction[k], fraction[k + 1]
            return float(a0 + (f0 - level) / (f0 - f1) * (a1 - a0))
    return math.nan


def _logistic_fit(alpha: np.ndarray, k: np.ndarray, n: np.ndarray) -> tuple[float, float, float, float]:
    """Binomial maximum-likelihood fit of ``p(alpha) = 1 / (1 + exp((alpha - alpha_c) / w))``.

    Returns ``(alpha_c, lo, hi, w)``; the interval is the profile-likelihood 95% interval of
    alpha_c (where twice the log-likelihood drops by 3.84 from its maximum). The width is kept
    above 1% of the load spacing, so that fully separated data (all perfect, then none) give a
    step inside the gap rather than a diverging fit."""
    from scipy.optimize import minimize, minimize_scalar

    spacing = float(np.min(np.diff(np.unique(alpha)))) if len(np.unique(alpha)) > 1 else 1.0
    log_w_min = math.log(0.01 * spacing)

    def nll(a_c: float, log_w: float) -> float:
        z = (alpha - a_c) / math.exp(max(log_w, log_w_min))
        # log p = -log(1 + e^z), log(1 - p) = z - log(1 + e^z)
        return float(np.sum(n * np.logaddexp(0.0, z) - (n - k) * z))

    def profile(a_c: float) -> float:
        return minimize_scalar(lambda lw: nll(a_c, lw), bounds=(log_w_min, math.log(10 * np.ptp(alpha) + 1)),
                               method="bounded").fun

    starts = np.linspace(alpha.min(), alpha.max(), 15)
    a_start = starts[int(np.argmin([profile(a) for a in starts]))]
    best = minimize(lambda q: nll(q[0], q[1]), x0=[a_start, math.log(max(spacing, 1e-3))], method="Nelder-Mead",
                    options={"xatol": 1e-6, "fatol": 1e-9})
    a_c, log_w = float(best.x[0]), max(float(best.x[1]), log_w_min)
    limit = nll(a_c, log_w) + 3.841458820694124 / 2

    def bound(direction: int) -> float:
        step, far = spacing, a_c
        for _ in range(200):
            far = far + direction * step
            if profile(far) > limit:
                lo, hi = sorted((far - direction * step, far))
                for _ in range(50):
                    mid = (lo + hi) / 2
                    inside = profile(mid) <= limit
                    if (direction > 0) == inside:
                        lo = mid
                    else:
                        hi = mid
                return (lo + hi) / 2
        return math.nan

    return a_c, bound(-1), bound(+1), math.exp(log_w)


def estimate_alpha_c(experiment: Experiment | pd.DataFrame, method: Literal["interpolate", "logistic"] = "interpolate",
                     db: DB = None, version: int | None = None) -> pd.DataFrame:
    """The critical load alpha_c per N: where the fraction of perfect runs crosses 1/2.

    ``experiment``: a capacity experiment or a :func:`capacity_curve` frame. Returns one row per
    N: ``N, method, alpha_c, alpha_c_lo, alpha_c_hi`` (and ``width`` for the logistic fit).

    - ``interpolate``: scanning the loads upwards, the first pair of neighbouring loads whose
      fraction goes from >= 1/2 to < 1/2, linearly interpolated between them. The interval is
      where the Wilson 95% bounds of the fraction cross 1/2 the same way (the upper bound
      crosses later, the lower bound earlier; the lower bound of a single run never reaches 1/2,
      so give each load several repeats). NaN when there is no crossing inside the range.
    - ``logistic``: the binomial maximum-likelihood fit of
      ``p(alpha) = 1 / (1 + exp((alpha - alpha_c) / w))`` to every run, with the
      profile-likelihood 95% interval of alpha_c.
    """
    curve = experiment if isinstance(experiment, pd.DataFrame) else capacity_curve(experiment, db, version)
    rows: list[dict[str, Any]] = []
    for N, part in curve.groupby("N", sort=True):
        part = part.sort_values("alpha")
        alpha = part["alpha"].to_numpy(float)
        if method == "interpolate":
            rows.append({"N": N, "method": method, "alpha_c": _crossing(alpha, part["perfect_frac"].to_numpy(float)),
                         "alpha_c_lo": _crossing(alpha, part["perfect_lo"].to_numpy(float)),
                         "alpha_c_hi": _crossing(alpha, part["perfect_hi"].to_numpy(float))})
        elif method == "logistic":
            a_c, lo, hi, width = _logistic_fit(alpha, part["n_perfect"].to_numpy(float), part["n"].to_numpy(float))
            rows.append({"N": N, "method": method, "alpha_c": a_c, "alpha_c_lo": lo, "alpha_c_hi": hi, "width": width})
        else:
            raise ValueError(f"method must be 'interpolate' or 'logistic', got {method!r}")
    return pd.DataFrame(rows)


def _panels(n: int, size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure of ``n`` side-by-side axes on the Agg canvas (no pyplot)."""
    figure = agg_figure(size)
    return figure, figure.subplots(1, n)


def capacity_figure(experiment: Experiment, db: DB = None, version: int | None = None,
                    method: Literal["interpolate", "logistic"] = "interpolate") -> tuple[Any, Any]:
    """The figure of :func:`plot_capacity_curve`, not saved, with the experiment's record."""
    from analysis.intervals import BAND_NAME, mean_bands
    from analysis.plots import _key_proxies, _mean_line

    table = read_run_table(experiment, db, version)
    curve = capacity_curve(table.experiment, db, version)
    critical = estimate_alpha_c(curve, method).set_index("N")
    runs = table.completed()
    values = pd.DataFrame({"N": runs[N_COLUMN].astype(int), "P": runs[P_COLUMN].astype(int),
                           ACC_METRIC: runs[ACC_METRIC]})
    figure, (left, right) = _panels(2, (10.5, 4.2))
    groups = list(curve.groupby("N", sort=True))
    band = dots = False
    for (N, line), color in zip(groups, _colors(len(groups))):
        x = line["alpha"].to_numpy(float)
        left.plot(x, line["perfect_frac"], color=color, marker="o", label=f"N = {N}")
        left.fill_between(x, line["perfect_lo"], line["perfect_hi"], color=color, alpha=0.2, linewidth=0)
        a_c = critical.loc[N, "alpha_c"]
        if math.isfinite(a_c):
            left.axvline(a_c, color=color, linestyle="--", linewidth=1, label=f"alpha_c = {a_c:.2f} (N = {N})")
        part = values[values["N"] == N]
        stats = mean_bands(part, ["P"], ACC_METRIC).set_index("P").loc[line["P"]].reset_index()
        raw = [part.loc[part["P"] == P, ACC_METRIC].dropna().to_numpy(float) for P in line["P"]]
        drew = _mean_line(right, x, stats, raw, color, f"N = {N}", marker="o")
        band, dots = band or drew[0], dots or drew[1]
    left.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    left.set(xlabel="load alpha = P / N", ylabel="fraction of perfect runs", ylim=(-0.03, 1.03),
             title=_title(table.experiment, "perfect runs, Wilson 95% CI"))
    right.set(xlabel="load alpha = P / N", ylabel="final training accuracy (fraction)",
              title="mean final training accuracy" + (f", {BAND_NAME}" if band else ""))
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    right.grid(alpha=0.3)
    handles, labels = right.get_legend_handles_labels()
    proxies = _key_proxies(band, dots)
    right.legend(handles + proxies, labels + [p.get_label() for p in proxies], fontsize="small")
    return table.experiment, figure


def plot_capacity_curve(experiment: Experiment, out: str | Path | None = None, db: DB = None,
                        version: int | None = None, method: Literal["interpolate", "logistic"] = "interpolate") -> Path:
    """Two panels against alpha, one line per N: the fraction of perfect runs with its Wilson 95%
    band and the estimated alpha_c (dashed), and the mean final training accuracy with its 95%
    bootstrap CI band where a load has n >= 3 runs (single runs as dots otherwise; never outside
    [0, 1]). Written to ``out`` (default ``outputs/<experiment>/report/capacity_curve.png``)."""
    record, figure = capacity_figure(experiment, db, version, method)
    return _save(figure, out if out is not None else _report_dir(record) / "capacity_curve.png")


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    """The capacity curve, for experiments that sweep data.size over RandomDataset runs."""
    table = read_run_table(record, store)
    needed = {N_COLUMN, P_COLUMN, PERFECT_METRIC, ACC_METRIC, "data.type"}
    if not needed <= set(table.runs.columns) or P_COLUMN not in table.varying:
        return []
    if set(table.completed()["data.type"]) != {"RandomDataset"}:
        return []
    critical = estimate_alpha_c(capacity_curve(record, store))
    found = ", ".join(f"N = {row.N}: {row.alpha_c:.2f} [{row.alpha_c_lo:.2f}, {row.alpha_c_hi:.2f}]"
                      for row in critical.itertuples())
    path = plot_capacity_curve(record, folder / "capacity_curve.png", db=store)
    caption = ("fraction of runs reaching 100% training accuracy (Wilson 95% band) and mean final training "
               "accuracy (95% bootstrap CI where n >= 3) against the load alpha = P / N; alpha_c (fraction crosses 1/2, interpolated; "
               f"Wilson-bound interval): {found}")
    return [("capacity curve", path, caption)]


REPORT_SECTIONS["tempotron_capacity"] = _report_section
