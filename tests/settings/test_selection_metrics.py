"""The test split never selects models: test_* monitors and objectives are refused at validation."""
from __future__ import annotations

import pytest
from testkit import TINY_CONFIG, make_pipeline

from settings.errors import ConfigError
from settings.metrics import selection_metric_problem
from settings.sweep import check_search


@pytest.mark.parametrize("name, instead", [("test_acc", "val_acc"), ("final_test_acc", "final_val_acc"),
                                           ("test_acc_at_best_val", "best_val_acc"), ("test_loss", "val_loss")])
def test_test_split_metrics_are_named_with_the_validation_alternative(name, instead):
    assert selection_metric_problem(name) == (f"{name!r} is measured on the test split, which never selects "
                                              f"models; use {instead!r}")


@pytest.mark.parametrize("name", ["val_acc", "train_loss", "best_val_acc", "spikes_per_sample", "attest_acc"])
def test_other_metrics_may_select(name):
    assert selection_metric_problem(name) is None


@pytest.mark.parametrize("setting, path", [
    ({"callbacks": [{"type": "EarlyStopping", "monitor": "test_acc", "mode": "max"}]}, "callbacks[0].monitor"),
    ({"callbacks": [{"type": "ModelCheckpoint", "monitor": "test_loss", "mode": "min"}]}, "callbacks[0].monitor"),
    ({"scheduler": {"type": "ReduceLROnPlateau", "monitor": "test_loss"}}, "scheduler.monitor"),
])
def test_monitors_on_the_test_split_are_refused(setting, path):
    with pytest.raises(ConfigError) as info:
        make_pipeline(TINY_CONFIG, **setting)
    assert f"{path} '" in str(info.value) and "which never selects models" in str(info.value)


def test_search_objectives_on_the_test_split_are_refused():
    search = {"method": "tpe", "n_trials": 2, "params": {"optimizer.lr": {"loguniform": [1e-3, 1e-1]}},
              "objectives": [{"metric": "best_val_acc"}, {"metric": "final_test_acc", "direction": "maximize"}]}
    with pytest.raises(ConfigError) as info:
        check_search(search)
    assert "search.objectives[1].metric 'final_test_acc' is measured on the test split" in str(info.value)
