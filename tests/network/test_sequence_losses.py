"""Losses over sequences and spikes, against hand computations; and a spike penalty that really
lowers the spike count of a trained network."""
from __future__ import annotations

import math

import torch
from testkit import make_pipeline

from network.losses import LossInput, LossSum, SequenceNLL, SpikeCountLoss
from pipeline.batches import LabelCounts


def two_step_scores() -> torch.Tensor:
    """``[T=3, B=2, C=2]`` scores whose log-softmax is easy by hand: logits (0, log 3) -> p = (1/4, 3/4)."""
    l3 = math.log(3.0)
    return torch.tensor([[[0.0, l3], [l3, 0.0]],
                         [[l3, 0.0], [0.0, 0.0]],
                         [[0.0, l3], [0.0, l3]]])


def test_per_step_masked_nll_and_accuracy_ignore_masked_steps_exactly() -> None:
    scores = two_step_scores()
    targets = torch.tensor([[1, 1, 0], [0, 1, 1]])  # [B, T]
    mask = torch.tensor([[True, False, True], [True, True, False]])
    record = LossInput(scores.mean(0), targets, mask, scores)
    loss = SequenceNLL(mode="per_step")
    # counted steps: (b0,t0) target 1 p=3/4; (b0,t2) target 0 p=1/4; (b1,t0) target 0 p=3/4; (b1,t1) target 1 p=1/2
    expected = -(math.log(0.75) + math.log(0.25) + math.log(0.75) + math.log(0.5)) / 4
    assert float(loss(record)) == pytest_approx(expected)
    predicted = loss.predict(record)
    assert predicted.tolist() == [[1, 0, 1], [0, 0, 1]]  # the tie (0, 0) at (b1, t1) goes to class 0
    counts = LabelCounts(2)
    counts.add(predicted, targets, mask)
    # counted: (b0,t0) 1==1 ok, (b0,t2) 1!=0, (b1,t0) 0==0 ok, (b1,t1) 0!=1: 2 of 4
    assert (counts.correct, counts.total) == (2, 4)
    assert counts.per_label() == {0: 0.5, 1: 0.5}
    # the masked steps may hold anything: changing them changes nothing
    scores2 = scores.clone()
    scores2[1, 0] = torch.tensor([100.0, -100.0])  # (t1, b0) is masked
    assert float(loss(LossInput(scores2.mean(0), targets, mask, scores2))) == pytest_approx(expected)


def test_warmup_steps_and_the_last_and_mean_modes() -> None:
    scores = two_step_scores()
    targets = torch.tensor([1, 0])
    last = SequenceNLL(mode="last")
    assert float(last(LossInput(scores[-1], targets, None, scores))) == pytest_approx(
        -(math.log(0.75) + math.log(0.25)) / 2)
    mean = SequenceNLL(mode="mean", warmup_steps=2)  # only t = 2 counts
    assert float(mean(LossInput(scores[-1], targets, None, scores))) == pytest_approx(
        -(math.log(0.75) + math.log(0.25)) / 2)
    assert mean.predict(LossInput(scores[-1], targets, None, scores)).tolist() == [1, 1]


def test_spike_count_loss_is_weight_times_spikes_per_sample_and_adds_up() -> None:
    spikes = (torch.zeros(4, 2, 3), torch.zeros(4, 2, 5))
    spikes[0][0, 0, 0] = spikes[0][1, 1, 2] = spikes[1][3, 0, 4] = 1.0  # 3 spikes over 2 samples
    record = LossInput(torch.zeros(2, 2), torch.tensor([0, 1]), spikes=spikes)
    assert float(SpikeCountLoss(weight=0.1)(record)) == pytest_approx(0.1 * 3 / 2)
    total = LossSum([SequenceNLL(mode="last"), SpikeCountLoss(weight=0.1)])
    record.step_scores = two_step_scores()[:, :, :]
    assert float(total(record)) == pytest_approx(float(SequenceNLL()(record)) + 0.15)
    assert total.predict(record).tolist() == SequenceNLL().predict(record).tolist()


SRNN = """\
data: {type: SequentialDigits, val_fraction: 0.1, test_fraction: 0.1}
model:
  layers:
    - type: Recurrent
      out_features: 32
      kernel: {type: LIFKernel, tau_m: 20.0, tau_syn: 5.0}
      weight_init: {type: XavierUniform, gain: 1.0}
  readout: {type: LeakyIntegrator, out_features: 10, tau: 20.0, reduce: last}
optimizer: {type: Adam, lr: 0.01}
epochs: 3
batch_size: 64
"""


def test_a_spike_penalty_lowers_the_spike_count_against_the_same_run_without_it() -> None:
    plain = make_pipeline(SRNN + "loss: {type: SequenceNLL, mode: last}\n").fit(seed=0)
    penalised = make_pipeline(SRNN + "loss: [{type: SequenceNLL, mode: last}, {type: SpikeCountLoss, weight: 0.01}]\n"
                              ).fit(seed=0)
    before = plain.history[0]["spikes_per_sample"]
    assert penalised.history[0]["spikes_per_sample"] == before  # one seed: the same untrained network
    assert plain.history[-1]["spikes_per_sample"] > 0
    assert penalised.history[-1]["spikes_per_sample"] < 0.5 * plain.history[-1]["spikes_per_sample"]
    assert penalised.history[-1]["spikes_per_sample"] < before


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-7)
