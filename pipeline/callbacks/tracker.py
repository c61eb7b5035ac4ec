"""MetricsTracker: the history of every epoch and the run's summary (final and best values)."""
from __future__ import annotations

import math

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.metrics import (CONVERGENCE, N_PARAMS, SPIKES_AT_BEST, TEST_ACC, TEST_LOSS, TRAIN_ACC, VAL_ACC,
                              label_metric)
from settings.registries import CALLBACKS

TEST_LABEL_PREFIX = label_metric("test", 0)[:-1]  # "test_acc/label_"


def summarize_history(history: list[dict[str, float]], monitor: str = VAL_ACC, mode: str = "max") -> dict[str, float]:
    """``final_<metric>`` for every metric of the last epoch, and the selected epoch: the first
    with the best ``monitor`` (``mode`` max or min) is ``best_epoch``, its value
    ``best_<monitor>``, its test metrics ``test_acc_at_best_val``, ``test_loss_at_best_val`` and
    the per-class ``test_acc/label_<k>_at_best_val``,
    its spike counts ``spikes_per_sample_at_best`` and ``spikes_per_step_at_best``.
    ``best_val_acc`` is always the highest validation accuracy. Without a validation split the
    training split stands in (``val_acc`` -> ``train_acc``, ``val_loss`` -> ``train_loss``).
    With a test accuracy, ``convergence_95``, ``convergence_98`` and ``convergence_100`` (see
    :func:`convergence_epochs`)."""
    if not history:
        return {}
    summary = {f"final_{k}": v for k, v in history[-1].items() if k != "epoch"}
    summary["epochs"] = history[-1]["epoch"]
    if not any(k.startswith("val_") for h in history for k in h):
        monitor = monitor.replace("val_", "train_", 1)
    accuracy = VAL_ACC if any(VAL_ACC in h for h in history) else TRAIN_ACC
    scored = [h for h in history if accuracy in h and not math.isnan(h[accuracy])]
    if scored:
        summary[f"best_{accuracy}"] = max(h[accuracy] for h in scored)
    scored = [h for h in history if monitor in h and not math.isnan(h[monitor])]
    if scored:
        pick = max if mode == "max" else min
        best = pick(scored, key=lambda h: h[monitor])  # the first epoch reaching the extreme
        summary[f"best_{monitor}"] = best[monitor]
        summary["best_epoch"] = best["epoch"]
        for key in (TEST_ACC, TEST_LOSS, *sorted(k for k in best if k.startswith(TEST_LABEL_PREFIX))):
            if key in best and monitor.startswith("val_"):
                summary[f"{key}_at_best_val"] = best[key]
        summary.update({name: best[key] for key, name in SPIKES_AT_BEST.items() if key in best})
    summary.update(convergence_epochs(history))
    return summary


def convergence_epochs(history: list[dict[str, float]], key: str = TEST_ACC) -> dict[str, float]:
    """``convergence_95``, ``convergence_98``, ``convergence_100``: the first epoch whose ``key``
    (the test accuracy) reaches 95, 98 and 100% of its value at the last epoch that has one
    (epoch 0, the untrained model, counts). Only the epochs that recorded ``key`` are looked at,
    so where the test split is not evaluated every epoch the value is the first evaluated epoch
    that reached the fraction (an upper bound of the true one). Empty without a finite final
    value. Fractions are compared with a relative tolerance of 1e-9 (``0.95 * 0.8`` is not
    exactly ``0.76`` in floating point)."""
    scored = [h for h in history if key in h and math.isfinite(h[key])]
    if not scored:
        return {}
    final = scored[-1][key]
    out = {}
    for name, fraction in CONVERGENCE.items():
        target = fraction * final
        target -= 1e-9 * abs(target)
        out[name] = float(next(h["epoch"] for h in scored if h[key] >= target))
    return out


def summarize_state(state: FitState) -> dict[str, float]:
    """The run's summary: its history under the pipeline's selection, and ``n_params`` (the
    trainable parameters)."""
    selection = getattr(state.pipeline, "selection", None)
    summary = summarize_history(state.history, selection.monitor, selection.mode) if selection is not None \
        else summarize_history(state.history)
    if N_PARAMS in state.extra:
        summary[N_PARAMS] = float(state.extra[N_PARAMS])
    return summary


@CALLBACKS.register
class MetricsTracker(Callback):
    """Keeps ``state.history`` and ``state.summary`` up to date (always installed, first)."""

    order = 0

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        state.history.append({"epoch": epoch, **metrics})
        state.summary = summarize_state(state)
