"""Optimizers by name: closure-driven ones (LBFGS) train; unusable ones are refused up front."""
from __future__ import annotations

import pytest
import torch
from testkit import TINY_CONFIG, make_pipeline

from settings.errors import ConfigError


def test_lbfgs_trains_through_the_step_closure():
    """LBFGS evaluates the closure several times per step; the batch's loss is the first call's."""
    steps, evaluations = [], []
    original = torch.optim.LBFGS.step

    def counting_step(self, closure):
        steps.append(1)

        def counted():
            evaluations.append(1)
            return closure()
        return original(self, counted)

    pipe = make_pipeline(TINY_CONFIG.replace("{type: Adam, lr: 0.01}", "{type: LBFGS, lr: 1.0, max_iter: 4}"),
                         epochs=2)
    torch.optim.LBFGS.step = counting_step
    try:
        result = pipe.fit(seed=0)
    finally:
        torch.optim.LBFGS.step = original
    history = result.history
    assert len(evaluations) > len(steps) > 0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.3  # ten classes: chance is 0.1


def test_sparse_adam_is_refused_with_the_reason():
    with pytest.raises(ConfigError) as info:
        make_pipeline(TINY_CONFIG.replace("{type: Adam, lr: 0.01}", "{type: SparseAdam}"))
    assert "optimizer.type SparseAdam cannot be used: it needs sparse gradients" in str(info.value)
    assert "use Adam or AdamW" in str(info.value)
