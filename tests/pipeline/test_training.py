"""TrainingPipeline: hook order, epoch-0 evaluation, metrics, NaN detection, resume, schedulers."""
from __future__ import annotations

import csv
import math

import pytest
import torch
from testkit import TEMPOTRON_CONFIG, TINY_CONFIG, make_pipeline

from network.optimizers import MomentumOptimizer
from pipeline.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
from pipeline.callbacks.base import Callback
from pipeline.state import DivergenceError


class Recorder(Callback):
    order = 60

    def __init__(self):
        self.calls: list[tuple] = []

    def on_fit_start(self, state):
        self.calls.append(("fit_start",))

    def on_epoch_start(self, state, epoch):
        self.calls.append(("epoch_start", epoch))

    def on_before_optimizer_step(self, state, batch, result):
        self.calls.append(("before_step", state.epoch, batch))

    def on_batch_end(self, state, batch, result):
        self.calls.append(("batch_end", state.epoch, batch))

    def on_epoch_end(self, state, epoch, metrics):
        self.calls.append(("epoch_end", epoch))

    def on_fit_end(self, state):
        self.calls.append(("fit_end",))

    def on_exception(self, state, exc):
        self.calls.append(("exception", type(exc).__name__))


def test_hooks_are_called_in_the_documented_order():
    pipe = make_pipeline(TEMPOTRON_CONFIG, epochs=2)  # 40 patterns, batch 10: 4 batches per epoch
    rec = Recorder()
    pipe.fit(seed=0, callbacks=[rec])
    expected = [("fit_start",), ("epoch_end", 0)]
    for epoch in (1, 2):
        expected += [("epoch_start", epoch)] + [call for b in range(4) for call in (("before_step", epoch, b), ("batch_end", epoch, b))] + [("epoch_end", epoch)]
    assert rec.calls == expected + [("fit_end",)]


def test_callbacks_run_by_order_within_a_hook():
    seen = []

    class A(Callback):
        order = 70

        def on_epoch_end(self, state, epoch, metrics):
            seen.append(("A", len(state.history)))

    class B(Callback):
        order = 5

        def on_epoch_end(self, state, epoch, metrics):
            seen.append(("B", len(state.history)))

    make_pipeline(TEMPOTRON_CONFIG, epochs=0).fit(seed=0, callbacks=[A(), B()])
    assert seen == [("B", 1), ("A", 1)]  # MetricsTracker (order 0) appended the history first


def test_epoch_zero_is_the_untrained_model_and_metric_names():
    result = make_pipeline(TINY_CONFIG, epochs=1).fit(seed=0)
    assert [h["epoch"] for h in result.history] == [0, 1]
    first = result.history[0]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "epoch_time_s",
                "spikes_per_sample", "val_acc/label_0", "val_acc/label_9", "test_acc/label_3"):
        assert key in first, key
    assert first["epoch_time_s"] == 0.0
    assert result.summary["best_epoch"] in (0, 1)
    assert {"final_val_acc", "best_val_acc", "test_acc_at_best_val"} <= set(result.summary)


def test_per_label_accuracy_is_consistent_with_overall():
    pipe = make_pipeline(TINY_CONFIG, epochs=1)
    last = pipe.fit(seed=1).history[-1]
    # overall accuracy is the mean of the per-label accuracies weighted by the validation label counts
    counts = torch.bincount(pipe.data.load(1).val.y, minlength=10).tolist()
    assert sum(counts) > 0 and all(counts)
    per_label = [last[f"val_acc/label_{k}"] for k in range(10)]
    weighted = sum(n * acc for n, acc in zip(counts, per_label)) / sum(counts)
    assert last["val_acc"] == pytest.approx(weighted, abs=1e-9)
    assert last["val_acc"] != pytest.approx(sum(per_label) / 10, abs=1e-9)  # here the weights do matter


def test_training_is_deterministic_under_a_seed():
    a = make_pipeline(TINY_CONFIG).fit(seed=5).history
    b = make_pipeline(TINY_CONFIG).fit(seed=5).history
    strip = [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in a]
    assert strip == [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in b]


def test_divergence_stops_the_run_with_a_clear_reason():
    pipe = make_pipeline(TINY_CONFIG.replace("{type: Adam, lr: 0.01}", "{type: SGD, lr: 1.0e+38}"))
    rec = Recorder()
    with pytest.raises(DivergenceError, match=r"(train_loss became (nan|inf)|parameter .* became NaN/inf)"):
        pipe.fit(seed=0, callbacks=[rec])
    assert rec.calls[-1] == ("exception", "DivergenceError")


def test_early_stopping_rules():
    class S:
        stop_reason = None

        def request_stop(self, reason):
            self.stop_reason = reason

    def run(cb, values):
        state = S()
        for epoch, v in enumerate(values):
            cb.on_epoch_end(state, epoch, {"m": v})
            if state.stop_reason:
                return epoch
        return None

    assert run(EarlyStopping("m", "min", patience=2), [1.0, 0.9, 0.95, 0.91, 0.5]) == 3
    assert run(EarlyStopping("m", "min", patience=2, min_delta=0.2), [1.0, 0.9, 0.85, 0.5]) == 2
    assert run(EarlyStopping("m", "max", patience=1, min_delta=0.1, relative=True), [1.0, 1.05, 2.0]) == 1
    assert run(EarlyStopping("m", "max", patience=5, stop_at=1.0), [0.5, 0.9, 1.0, 0.2]) == 2
    with pytest.raises(KeyError, match="available: m"):
        run(EarlyStopping("val_loss"), [1.0])


def test_resume_from_checkpoint_equals_an_uninterrupted_fit(tmp_path):
    full = make_pipeline(TINY_CONFIG, epochs=4).fit(seed=3, run_dir=tmp_path / "full",
                                                     callbacks=[ModelCheckpoint(), CSVLogger()])
    make_pipeline(TINY_CONFIG, epochs=2).fit(seed=3, run_dir=tmp_path / "part",
                                              callbacks=[ModelCheckpoint(), CSVLogger()])
    resumed = make_pipeline(TINY_CONFIG, epochs=4).fit(seed=3, run_dir=tmp_path / "part",
                                                       callbacks=[ModelCheckpoint(), CSVLogger()],
                                                       resume=tmp_path / "part" / "checkpoints" / "last.pt")
    strip = lambda hist: [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in hist]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader((tmp_path / "part" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]


def test_scheduler_per_batch_and_per_epoch():
    base = TEMPOTRON_CONFIG.replace("epochs: 3", "epochs: 2")
    per_batch = make_pipeline(base + "scheduler: {type: StepLR, step_size: 1, gamma: 0.5, interval: batch}\n")
    per_epoch = make_pipeline(base + "scheduler: {type: StepLR, step_size: 1, gamma: 0.5}\n")
    lrs_batch = [h["lr"] for h in per_batch.fit(seed=0).history]
    lrs_epoch = [h["lr"] for h in per_epoch.fit(seed=0).history]
    # the logged lr is the rate an epoch trained with (its first batch); 4 batches per epoch
    assert lrs_batch == pytest.approx([0.01, 0.01, 0.01 * 0.5 ** 4])
    assert lrs_epoch == pytest.approx([0.01, 0.01, 0.005])


def test_momentum_optimizer_keeps_one_velocity_per_parameter():
    a = torch.nn.Parameter(torch.tensor([1.0]))
    b = torch.nn.Parameter(torch.tensor([2.0]))
    opt = MomentumOptimizer([a, b], lr=0.1, momentum=0.5)
    for ga, gb in [(1.0, 10.0), (2.0, 0.0)]:
        a.grad, b.grad = torch.tensor([ga]), torch.tensor([gb])
        opt.step()
    # a: m = 1 -> w = 0.9; m = 0.5*1 + 2 = 2.5 -> w = 0.65.  b: m = 10 -> 1.0; m = 5 -> 0.5
    assert a.item() == pytest.approx(0.65) and b.item() == pytest.approx(0.5)


def test_every_torch_optimizer_is_usable_by_name():
    from settings.registries import OPTIMIZERS

    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam"):
        pipe = make_pipeline(TEMPOTRON_CONFIG, epochs=1, **{"optimizer": {"type": name, "lr": 0.001}})
        assert math.isfinite(pipe.fit(seed=0).history[-1]["train_loss"])
    assert "MomentumOptimizer" in OPTIMIZERS


def test_small_tempotron_learns_its_patterns():
    pipe = make_pipeline(TEMPOTRON_CONFIG.replace("epochs: 3", "epochs: 300") +
                         "callbacks: [{type: EarlyStopping, monitor: train_acc, mode: max, stop_at: 1.0, "
                         "patience: 300}]\n")
    result = pipe.fit(seed=0)
    assert result.history[-1]["train_acc"] == 1.0
