"""The logged ``lr`` of an epoch is the rate that epoch trained with (before the scheduler stepped)."""
from __future__ import annotations

from testkit import TINY_CONFIG, make_pipeline


def test_lr_is_logged_for_the_epoch_it_trained():
    pipe = make_pipeline(TINY_CONFIG, epochs=3, scheduler={"type": "StepLR", "step_size": 1, "gamma": 0.5})
    history = pipe.fit(seed=0).history
    assert [round(h["lr"], 12) for h in history] == [0.01, 0.01, 0.005, 0.0025]  # epoch 0 evaluates only


def test_batch_schedules_log_the_rate_of_the_first_batch():
    pipe = make_pipeline(TINY_CONFIG, epochs=2, batch_size=5000,
                         scheduler={"type": "StepLR", "step_size": 1, "gamma": 0.5, "interval": "batch"})
    history = pipe.fit(seed=0).history  # one batch per epoch
    assert [round(h["lr"], 12) for h in history] == [0.01, 0.01, 0.005]
