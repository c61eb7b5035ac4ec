"""Reading experiments: the database as pandas frames, statistics over repeats, and plots.

Everything reads through the store interface over a read-only connection. ``db`` is a
SQLAlchemy URL, a SQLite file path, an open store, or None (``sqlite:///outputs/spikelab.db``);
``experiment`` is a name (its latest version unless ``version`` is given) or an
``ExperimentRecord``::

    import analysis
    runs = analysis.load_runs("quick_tour")                   # one row per run
    analysis.summarize("quick_tour", by="trial")               # final_val_acc_mean, _std, _sem, _ci95, _n ...
    analysis.plot_learning_curves("quick_tour", out_dir="report")

Aggregates use flat ``<metric>_<stat>`` columns after the grouping columns (see
:mod:`analysis.stats`). matplotlib and scipy are imported only when a plot or a CI is made.
"""
from __future__ import annotations

from analysis.capacity import capacity_curve, estimate_alpha_c, plot_capacity_curve
from analysis.compare import compare_samples, compare_trials, describe_comparison
from analysis import first_spike_plots  # noqa: F401  (registers its report section)
from analysis.frames import load_experiments, load_metrics, load_runs, top_runs, varying_params
from analysis.intervals import bootstrap_mean_interval, metric_range
from analysis.plots import plot_heatmap, plot_learning_curves, plot_metric_vs_param, plot_search_scatter
from analysis.report import REPORT_SECTIONS, REPORT_TABLES, build_report
from analysis.resonator_report import plot_convergence_curves, plot_sops
from analysis.run_activity import plot_run_activity, run_activity
from analysis.pareto import non_dominated, pareto_front, search_fronts
from analysis.source import DEFAULT_DB, ExperimentNotFound, open_store
from analysis.stats import aggregate_sweep, alif_trials, ci95_halfwidth, learning_curves, sop_ratio_vs_alif, summarize
from analysis.tempotron_plots import plot_tempotron_run
from experiment.trained_run import load_trained_run

__all__ = [
    "DEFAULT_DB", "REPORT_SECTIONS", "REPORT_TABLES", "ExperimentNotFound", "aggregate_sweep", "alif_trials",
    "bootstrap_mean_interval", "build_report", "capacity_curve", "ci95_halfwidth", "compare_samples", "compare_trials",
    "describe_comparison", "estimate_alpha_c", "metric_range", "plot_run_activity", "plot_search_scatter",
    "run_activity", "learning_curves", "load_experiments", "load_metrics",
    "load_runs", "load_trained_run", "non_dominated", "open_store", "pareto_front", "plot_capacity_curve",
    "plot_convergence_curves", "plot_heatmap", "plot_learning_curves", "plot_metric_vs_param", "plot_sops",
    "plot_tempotron_run", "search_fronts", "sop_ratio_vs_alif", "summarize", "top_runs", "varying_params",
]
