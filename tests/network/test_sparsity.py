"""The encoder loss, the spike-sparsity losses and the sparsity measures against hand computations
on small tensors (specs/encoders_losses.md), and the SparsityMetrics callback in a fit."""
from __future__ import annotations

import math

import pytest
import torch
from testkit import TINY_CONFIG, make_pipeline

from network.losses import CrossEntropyLoss, LossInput, SpikeCountLoss, combine
from network.sparsity import (CESpikeSparsityLoss, EncoderLoss, SpikeSparsityLoss, binary_sparsity, hoyer_sparsity,
                              soft_mutual_information, spike_density, spike_sparsity, temporal_sparsity, unit_counts)
from pipeline.callbacks.base import Callback
from pipeline.callbacks.sparsity import SparsityMetrics

# [T=2, B=2, N=3]: sample 0 fires units 0, 0, 1; sample 1 fires units 0, 2
SPIKES = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
                       [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
LOG2_4_3 = math.log2(4 / 3)


def encoder_record(x: torch.Tensor, z: torch.Tensor, spikes: list[float], psi: float = 5.0) -> LossInput:
    terms = {"encoder.input": x, "encoder.match": z, "encoder.spikes": torch.tensor(spikes),
             "encoder.psi": torch.tensor(psi)}
    return LossInput(torch.zeros(x.shape[0], 2), torch.zeros(x.shape[0], dtype=torch.long), penalties=terms)


def test_soft_mutual_information_by_hand():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # p_xz = 2.5 / 4, p_x = 3 / 4, p_z = 2.5 / 4: MI = 0.625 log2(0.625 / (0.75 * 0.625)) = 0.625 log2(4/3)
    z = torch.tensor([[1.0, 0.0], [1.0, 0.5]])
    assert float(soft_mutual_information(x, z)) == pytest.approx(0.625 * LOG2_4_3, rel=1e-6)
    # p_xz = p_x p_z: independent, MI = 0
    assert float(soft_mutual_information(x, torch.tensor([[0.5, 0.5], [1.0, 0.0]]))) == pytest.approx(0.0, abs=1e-7)
    # zeros are clipped to 1e-12: a silent input gives a finite, vanishing MI
    silent = soft_mutual_information(torch.zeros(2, 2), z)
    assert torch.isfinite(silent) and abs(float(silent)) < 1e-10


def test_encoder_loss_by_hand():
    """L = -mean_k MI(X, Z_k) + mean_b |n_b - psi sum X_b|."""
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    z = torch.stack([torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.5]])])  # K = 2
    record = encoder_record(x, z, [6.0, 12.0])
    # MI_1 = 0, MI_2 = 0.625 log2(4/3); counts |6 - 5 * 1| = 1, |12 - 5 * 2| = 2
    expected = -(0.0 + 0.625 * LOG2_4_3) / 2 + (1 + 2) / 2
    assert float(EncoderLoss()(record)) == pytest.approx(expected, rel=1e-6)
    assert float(EncoderLoss(count_weight=0.0)(record)) == pytest.approx(-0.3125 * LOG2_4_3, rel=1e-6)


def test_encoder_loss_count_ratio_scales_the_count_target():
    """count_ratio r: the count term is mean_b |n_b - r psi sum X_b|."""
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    z = torch.stack([torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.5]])])
    record = encoder_record(x, z, [6.0, 12.0])
    mi = -(0.0 + 0.625 * LOG2_4_3) / 2
    # r = 0.5: targets 2.5 and 5; |6 - 2.5| = 3.5, |12 - 5| = 7
    assert float(EncoderLoss(count_ratio=0.5)(record)) == pytest.approx(mi + (3.5 + 7) / 2, rel=1e-6)
    # r = 1.2 with count_weight 2: targets 6 and 12, a perfect count leaves the MI alone
    assert float(EncoderLoss(count_weight=2.0, count_ratio=1.2)(record)) == pytest.approx(mi, rel=1e-6)
    # the gradient of the count term in the spikes is count_weight * sign(n_b - target) / N
    spikes = torch.tensor([2.0, 6.0], requires_grad=True)
    terms = dict(record.penalties, **{"encoder.spikes": spikes})
    EncoderLoss(count_ratio=0.5)(LossInput(record.scores, record.targets, penalties=terms)).backward()
    assert spikes.grad.tolist() == [-0.5, 0.5]  # 2 < 2.5, 6 > 5


def test_multi_channel_encoder_loss_averages_the_channels():
    # one image [C=2, H=1, W=2]: channel 0 = [1, 0], channel 1 = [1, 1]
    x = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]]]])
    z = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.5]]]]).unsqueeze(0)  # K = 1
    record = encoder_record(x, z, [16.0])
    # channel 0: 0.5 log2(0.5 / 0.25) = 0.5; channel 1: p_x = 1, MI = 0; count |16 - 5 * 3| = 1
    assert float(EncoderLoss(per_channel=True)(record)) == pytest.approx(-0.25 + 1.0, rel=1e-6)
    # over the whole image: p_xz = 0.5, p_x = 0.75, p_z = 0.5
    assert float(EncoderLoss()(record)) == pytest.approx(-0.5 * math.log2(0.5 / 0.375) + 1.0, rel=1e-6)


def test_encoder_loss_gradients_agree_with_finite_differences():
    torch.manual_seed(0)
    x = torch.rand(3, 4, dtype=torch.float64)
    psi = torch.tensor(5.0, dtype=torch.float64)

    def loss(z, spikes):
        terms = {"encoder.input": x, "encoder.match": z, "encoder.spikes": spikes, "encoder.psi": psi}
        return EncoderLoss(per_channel=True)(LossInput(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                                       penalties=terms))

    z = torch.rand(2, 3, 4, dtype=torch.float64, requires_grad=True)
    spikes = (torch.rand(3, dtype=torch.float64) * 20).requires_grad_()
    assert torch.autograd.gradcheck(loss, (z, spikes))


def test_encoder_loss_without_a_learned_encoder_says_what_it_needs():
    with pytest.raises(ValueError, match="EncoderLoss reads the terms a learned encoder reports .*STAL"):
        EncoderLoss()(LossInput(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long)))


def test_spike_sparsity_loss_by_hand():
    """s = [1.5, 0.5, 0.5]: sum 2.5, sum s^2 2.75; with c = 2: 2.5 - 2 * 2.75 / 2.5 = 0.3."""
    assert unit_counts(SPIKES).tolist() == [1.5, 0.5, 0.5]
    assert float(spike_sparsity(unit_counts(SPIKES), 2.0)) == pytest.approx(2.5 - 5.5 / (2.5 + 1e-6), rel=1e-7)
    loss = SpikeSparsityLoss(omega=0.1, c=2.0, n_epochs=4)
    scores, targets = torch.zeros(2, 3), torch.tensor([0, 1])
    value = {epoch: float(loss(LossInput(scores, targets, spikes=(SPIKES,), epoch=epoch))) for epoch in (0, 2, 4, 8)}
    assert value[0] == 0.0
    assert value[2] == pytest.approx(0.1 * 0.5 * 0.3, rel=1e-5)  # ramp epoch / n_epochs = 0.5
    assert value[4] == pytest.approx(0.03, rel=1e-5) and value[8] == value[4]  # the ramp stops at 1


def test_spike_sparsity_sums_over_layers_and_can_pick_them():
    second = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])  # s = [1, 0.5]: 1.5 - 2 * 1.25 / 1.5 (c > 1 may go below 0)
    record = LossInput(torch.zeros(2, 3), torch.tensor([0, 1]), spikes=(SPIKES, second), epoch=4)
    first_only = 0.1 * (2.5 - 5.5 / (2.5 + 1e-6))
    second_only = 0.1 * (1.5 - 2.5 / (1.5 + 1e-6))
    both = SpikeSparsityLoss(omega=0.1, c=2.0, n_epochs=4)(record)
    assert float(both) == pytest.approx(first_only + second_only, rel=1e-5)
    picked = SpikeSparsityLoss(omega=0.1, c=2.0, n_epochs=4, layers=[1])(record)
    assert float(picked) == pytest.approx(second_only, rel=1e-5)
    with pytest.raises(ValueError, match=r"SpikeSparsityLoss\.layers must be positions among the model's 2 spiking layer\(s\) .* got \[2\]"):
        SpikeSparsityLoss(layers=[2])(record)


def test_ce_plus_ss_is_cross_entropy_plus_the_ramped_penalty():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    targets = torch.tensor([0, 2])
    record = LossInput(scores, targets, spikes=(SPIKES,), epoch=1)
    ce = -(math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1))) + math.log(1 / (2 * math.exp(0.5) + 1))) / 2
    ss = 0.1 * (1 / 4) * (2.5 - 5.5 / (2.5 + 1e-6))
    assert float(CESpikeSparsityLoss(omega=0.1, c=2.0, n_epochs=4)(record)) == pytest.approx(ce + ss, rel=1e-6)
    assert CESpikeSparsityLoss().predict(record).tolist() == [0, 0]


def test_energy_aware_loss_is_the_task_loss_plus_spikes_per_sample():
    """L_task + lambda total_spikes / batch: 5 + 2 spikes over 2 samples, lambda = 0.01."""
    second = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    scores, targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    record = LossInput(scores, targets, spikes=(SPIKES, second))
    loss = combine([CrossEntropyLoss(), SpikeCountLoss(weight=0.01)])
    ce = -(math.log(math.e / (math.e + 1)) + math.log(1 / (math.e + 1))) / 2
    assert float(loss(record)) == pytest.approx(ce + 0.01 * 7 / 2, rel=1e-6)


def test_sparsity_measures_by_hand():
    assert spike_density(SPIKES) == pytest.approx(5 / 12)
    assert binary_sparsity(SPIKES) == pytest.approx(7 / 12)
    assert binary_sparsity(torch.tensor([0.2, 0.6, 0.5, 0.9]).reshape(1, 1, 4)) == 0.5  # 0.5 counts as silent
    # s = [1.5, 0.5, 0.5]: 1 - 2.5 / (sqrt(2.75) sqrt(3))
    assert hoyer_sparsity(unit_counts(SPIKES)) == pytest.approx(1 - 2.5 / math.sqrt(2.75 * 3))
    assert hoyer_sparsity(torch.ones(5)) == pytest.approx(0.0, abs=1e-12)
    assert hoyer_sparsity(torch.tensor([0.0, 0.0, 4.0])) == pytest.approx(1 - 1 / math.sqrt(3))
    assert hoyer_sparsity(torch.zeros(3)) == 1.0
    # 5 active steps over 2 samples x 3 units
    assert temporal_sparsity(SPIKES) == pytest.approx(5 / 6)
    assert temporal_sparsity(torch.tensor([0.4, 0.6, 0.9]).reshape(3, 1, 1)) == 2.0


def test_sparsity_metrics_are_recorded_every_epoch_and_match_the_measures(tmp_path):
    """The callback's values equal the measures over the whole validation split, run by hand
    with the fitted model (the input is the rate encoder's spikes)."""

    class Recompute(Callback):
        order = 100

        @torch.no_grad()
        def on_fit_end(self, state):
            split = state.extra["encoded"]["val"]
            state.model.eval()
            x, _, _ = split.batch(torch.arange(len(split)))
            out = state.model(x).traces[0].out
            self.expected = {"input": x, "layer_0": out}

    check = Recompute()
    pipe = make_pipeline(TINY_CONFIG, epochs=1, train_metrics="running", callbacks=[{"type": "SparsityMetrics"}])
    assert isinstance(pipe.callbacks[0], SparsityMetrics)
    history = pipe.fit(seed=0, run_dir=tmp_path / "run", callbacks=[check]).history
    assert [h["epoch"] for h in history] == [0, 1] and all("spike_density/layer_0" in h for h in history)
    last = history[-1]
    for source, spikes in check.expected.items():
        assert last[f"spike_density/{source}"] == pytest.approx(spike_density(spikes), rel=1e-9)
        assert last[f"binary_sparsity/{source}"] == pytest.approx(binary_sparsity(spikes), rel=1e-9)
        assert last[f"hoyer_sparsity/{source}"] == pytest.approx(hoyer_sparsity(unit_counts(spikes)), rel=1e-6)
        assert last[f"temporal_sparsity/{source}"] == pytest.approx(temporal_sparsity(spikes), rel=1e-9)
    both = torch.cat([s.flatten() for s in check.expected.values()])
    assert last["spike_density"] == pytest.approx(float(both.sum()) / both.numel(), rel=1e-9)
    assert 0 < last["spike_density/layer_0"] < 1
    # measuring changes nothing else: the same run without the callback has the same metrics
    plain = make_pipeline(TINY_CONFIG, epochs=1, train_metrics="running").fit(seed=0).history
    assert [{k: v for k, v in h.items() if "sparsity" not in k and "density" not in k and k != "epoch_time_s"}
            for h in history] == [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in plain]


def test_encoder_loss_trains_a_conv_stal_and_its_eval_spikes_are_binary():
    """A ConvSTAL pretrained with the multi-channel encoder loss: the loss falls, and the metrics
    (eval mode) count binarised spikes, so density and binary sparsity add up to 1."""
    config = """\
data: {type: Digits, val_fraction: 0.2, test_fraction: 0.2, layout: image}
model:
  type: EncoderClassifier
  encoder: {type: ConvSTAL, channels: 4, psi: 5}
  classifier: {type: SRNN, out_features: 10}
loss: {type: EncoderLoss, per_channel: true}
optimizer: {type: Adam, lr: 0.01}
callbacks: [SparsityMetrics]
epochs: 2
batch_size: 64
"""
    history = make_pipeline(config).fit(seed=0).history
    assert history[-1]["train_loss"] < history[1]["train_loss"] and history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]
    for h in history:
        assert h["spike_density/layer_0"] + h["binary_sparsity/layer_0"] == pytest.approx(1.0, abs=1e-9)
    assert history[-1]["spike_density/layer_0"] > 0
