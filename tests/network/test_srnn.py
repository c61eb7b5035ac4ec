"""SRNN: its LIF neurons are snnTorch's Leaky (hand-computed steps), a hand-computed tiny
network, shapes and summed-spike scores, images flattened, single-spike inputs, determinism,
gradients, and a short training run."""
from __future__ import annotations

import torch

from network.events import SpikeTimes
from network.srnn import SRNN, leaky_lif
from settings.registries import MODELS
from settings.schema import build, validate
from tools.seeding import seed_everything


def test_leaky_lif_is_u_beta_plus_input_minus_reset():
    """``U_t = 0.9 U_{t-1} + I_t - z_{t-1}`` with ``I = 0.5``: 0.5, 0.95, 1.355 (spike), then
    0.9 * 1.355 + 0.5 = 1.7195 - 1 = 0.7195, 0.9 * 0.7195 + 0.5 = 1.14755 (spike), ..."""
    kernel = leaky_lif(1, beta=0.9, v_th=1.0, surrogate="FastSigmoid").double()
    out, _, membrane = kernel.trace(torch.full((5, 1, 1), 0.5, dtype=torch.float64))
    u = [0.5, 0.95, 1.355, 0.7195, 1.14755]
    assert torch.allclose(membrane[:, 0, 0], torch.tensor(u, dtype=torch.float64), atol=1e-12)
    assert out[:, 0, 0].tolist() == [0.0, 0.0, 1.0, 0.0, 1.0]


def test_hand_computed_tiny_network():
    """One input, one hidden and one output neuron (beta 0.5, v_th 1): hidden current
    ``I = 1.2 x + 0.3 z_h``, output current ``0.8 z_h + 0.0 z_o`` (biases 0). Input 1, 1, 0:
    hidden U = 1.2 (spike), 0.6 + 1.2 + 0.3 - 1 = 1.1 (spike), 0.55 + 0 + 0.3 - 1 = -0.15;
    output U = 0.8, 0.4 + 0.8 = 1.2 (spike), 0.6 + 0 - 1 = -0.4: the score is 1 spike."""
    model = SRNN(1, out_features=1, hidden=1, beta=0.5).double()
    with torch.no_grad():
        model.hidden.weight.copy_(torch.tensor([[1.2, 0.3]]))
        model.hidden.bias.zero_()
        model.output.weight.copy_(torch.tensor([[0.8, 0.0]]))
        model.output.bias.zero_()
    out = model(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64).reshape(3, 1, 1))
    hidden, output = out.traces
    assert torch.allclose(hidden.membrane[:, 0, 0], torch.tensor([1.2, 1.1, -0.15], dtype=torch.float64))
    assert hidden.out[:, 0, 0].tolist() == [1.0, 1.0, 0.0]
    assert torch.allclose(output.membrane[:, 0, 0], torch.tensor([0.8, 1.2, -0.4], dtype=torch.float64))
    assert out.scores.tolist() == [[1.0]]


def test_shapes_and_summed_spike_scores():
    torch.manual_seed(0)
    model = SRNN(64, out_features=10)
    assert model.hidden.out_features == 56 and model.out_features == 10
    assert model.hidden.recurrent_weight.shape == (56, 56)  # all-to-all
    out = model((torch.rand(5, 3, 64) < 0.4).float())
    assert out.scores.shape == (3, 10)
    assert [t.out.shape for t in out.traces] == [(5, 3, 56), (5, 3, 10)]
    assert torch.equal(out.scores, out.traces[1].out.sum(dim=0))


def test_images_are_flattened_and_single_spikes_accepted():
    torch.manual_seed(0)
    model = SRNN((1, 2, 3), out_features=4, hidden=8)
    x = (torch.rand(4, 2, 1, 2, 3) < 0.5).float()
    assert torch.equal(model(x).scores, model(x.flatten(2)).scores)
    times = SpikeTimes(torch.tensor([[0, -1, 3, 1, 2, -1], [2, 2, -1, 0, 3, 1]]), 4)
    assert torch.equal(model(times).scores, model(times.to_dense()).scores)


def test_deterministic_under_a_seed_and_gradients_reach_every_parameter():
    def run(seed: int):
        seed_everything(seed)
        model = build(validate({"type": "SRNN", "out_features": 3}, MODELS, "model"), MODELS, input_size=12)
        x = (torch.rand(6, 4, 12) < 0.5).float()
        return model, model(x)

    (model, out), (_, again) = run(0), run(0)
    assert torch.equal(out.scores, again.scores)
    assert not torch.equal(out.traces[0].membrane, run(1)[1].traces[0].membrane)
    torch.nn.functional.cross_entropy(out.scores, torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_stal_srnn_learns_digits():
    """STAL -> SRNN on Digits (rate of learning, not a benchmark): 3 epochs end to end with
    cross-entropy reach far above chance (0.1)."""
    from testkit import make_pipeline

    config = """\
data: {type: Digits, val_fraction: 0.1, test_fraction: 0.2}
model:
  type: EncoderClassifier
  encoder: {type: STAL, psi: 5}
  classifier: {type: SRNN, out_features: 10}
loss: CrossEntropyLoss
optimizer: {type: Adam, lr: 0.005}
epochs: 3
batch_size: 32
train_metrics: running
"""
    result = make_pipeline(config).fit(seed=0)
    assert result.history[-1]["val_acc"] > 0.6
