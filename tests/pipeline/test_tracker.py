"""The run summary's BRF-paper metrics: convergence epochs of the test accuracy, spike counts at
the selected epoch, and their names in settings.metrics."""
from __future__ import annotations

import math

import pytest

from pipeline.callbacks.tracker import convergence_epochs, summarize_history
from settings.metrics import CONVERGENCE, selection_metric_problem

# final test accuracy 0.8: 95% is 0.76 (first reached at epoch 3), 98% is 0.784 (epoch 4), 100% epoch 4
HISTORY = [
    {"epoch": 0, "val_loss": 2.0, "val_acc": 0.1, "test_acc": 0.10, "spikes_per_sample": 5.0, "spikes_per_step": 0.25},
    {"epoch": 1, "val_loss": 1.0, "val_acc": 0.5, "test_acc": 0.50, "spikes_per_sample": 40.0, "spikes_per_step": 2.0},
    {"epoch": 2, "val_loss": 0.4, "val_acc": 0.7, "test_acc": 0.75, "spikes_per_sample": 30.0, "spikes_per_step": 1.5},
    {"epoch": 3, "val_loss": 0.5, "val_acc": 0.8, "test_acc": 0.76, "spikes_per_sample": 20.0, "spikes_per_step": 1.0},
    {"epoch": 4, "val_loss": 0.6, "val_acc": 0.8, "test_acc": 0.80, "spikes_per_sample": 10.0, "spikes_per_step": 0.5},
    {"epoch": 5, "val_loss": 0.7, "val_acc": 0.8, "test_acc": 0.80, "spikes_per_sample": 12.0, "spikes_per_step": 0.6},
]


def test_convergence_epochs_are_the_first_reaching_each_fraction_of_the_final_test_accuracy():
    assert convergence_epochs(HISTORY) == {"convergence_95": 3.0, "convergence_98": 4.0, "convergence_100": 4.0}


def test_a_later_drop_moves_100_percent_to_the_first_epoch_at_or_above_the_final_value():
    history = [{"epoch": 0, "test_acc": 0.2}, {"epoch": 1, "test_acc": 0.9}, {"epoch": 2, "test_acc": 0.6}]
    assert convergence_epochs(history) == {"convergence_95": 1.0, "convergence_98": 1.0, "convergence_100": 1.0}


def test_only_epochs_with_a_test_accuracy_count():
    history = [{"epoch": 0, "test_acc": 0.1}, {"epoch": 1}, {"epoch": 2, "test_acc": float("nan")},
               {"epoch": 3, "test_acc": 0.5}, {"epoch": 4}]
    assert convergence_epochs(history) == dict.fromkeys(CONVERGENCE, 3.0)


def test_without_a_test_accuracy_there_is_no_convergence_metric():
    history = [{"epoch": 0, "train_acc": 0.5}, {"epoch": 1, "train_acc": 0.9}]
    assert convergence_epochs(history) == {}
    assert not set(CONVERGENCE) & set(summarize_history(history))


def test_the_summary_holds_the_convergence_epochs_and_the_spikes_at_the_selected_epoch():
    summary = summarize_history(HISTORY, monitor="val_loss", mode="min")
    assert summary["best_epoch"] == 2 and summary["test_acc_at_best_val"] == 0.75
    assert summary["spikes_per_sample_at_best"] == 30.0 and summary["spikes_per_step_at_best"] == 1.5
    assert summary["final_spikes_per_sample"] == 12.0
    assert summary["convergence_95"] == 3.0 and summary["convergence_100"] == 4.0


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_convergence_epochs_never_select_models(name):
    assert "measured on the test split, which never selects" in selection_metric_problem(name)


def test_a_non_spiking_run_has_no_spikes_at_best():
    history = [{"epoch": 0, "val_acc": 0.1, "test_acc": 0.1}, {"epoch": 1, "val_acc": 0.6, "test_acc": 0.5}]
    summary = summarize_history(history)
    assert "spikes_per_sample_at_best" not in summary and summary["convergence_95"] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in summary.values())
