"""STAL, ConvSTAL and ConvSTAL-PS: shapes, a hand-computed forward, thresholds (init, clamping,
gradients), binary spikes and frozen BatchNorm in eval, determinism, the encoder-loss terms, and
the EncoderClassifier composite."""
from __future__ import annotations

import math

import pytest
import torch

from network.encoder_classifier import EncoderClassifier
from network.srnn import SRNN
from network.stal import STAL, ConvSTAL, ConvSTALPS, frames_to_steps
from settings.errors import ConfigError
from settings.registries import LAYERS, MODELS
from settings.schema import build, validate
from tools.seeding import seed_everything

EPS = 1e-5  # BatchNorm's eps


def small_stal() -> STAL:
    """2 inputs -> 2 hidden -> 2 outputs, psi 2, with weights set for a hand computation; BN in
    eval mode with running mean 0 and variance 1 (it divides by sqrt(1 + eps))."""
    stal = STAL(2, out_features=2, hidden=2, psi=2)
    with torch.no_grad():
        stal.block1[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        stal.block1[0].bias.zero_()
        stal.block2[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
        stal.block2[0].bias.copy_(torch.tensor([0.1, 0.0]))
        stal.match1.weight.copy_(torch.eye(2))
        stal.match1.bias.zero_()
        stal.match2.weight.zero_()
        stal.match2.bias.copy_(torch.tensor([0.0, math.log(3.0)]))
        stal.threshold.theta.copy_(torch.tensor([[0.3, 0.6], [0.45, 0.45]]))
    return stal.eval()


def test_hand_computed_forward():
    """x = (0.8, 0.2): h1 = relu(W1 x) = (0.8, 0.5), h2 = relu(W2 h1 + b2) = (0.4, 0.5) (each up to
    the BN factor 1/sqrt(1 + eps)); against theta = [[0.3, 0.6], [0.45, 0.45]] the soft spikes are
    sigmoid(25 * (+-0.1)) and sigmoid(25 * (-+0.05)), the eval spikes h > theta; the match
    projections sigmoid(h1) and sigmoid((0, ln 3)) = (0.5, 0.75)."""
    stal = small_stal()
    x = torch.tensor([[[0.8, 0.2]]])  # [T=1, B=1, 2]
    s = 1 / math.sqrt(1 + EPS)
    h1 = torch.tensor([0.8, 0.5]) * s
    h2 = torch.tensor([(0.3 * s + 0.1) * s, 0.5 * s * s])
    theta = torch.tensor([[0.3, 0.6], [0.45, 0.45]])

    binary = stal(x)
    assert binary.out.shape == (2, 1, 2)
    assert binary.out[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert torch.allclose(binary.membrane[:, 0], h2 - theta, atol=1e-6)
    assert binary.penalty["encoder.spikes"].tolist() == [2.0]

    stal.threshold.train()  # soft spikes, BN still in eval
    soft = stal(x)
    expected = torch.sigmoid(25 * (h2 - theta))
    assert torch.allclose(soft.out[:, 0], expected, atol=1e-6)
    assert torch.allclose(soft.out[:, 0], torch.tensor([[0.924142, 0.075858], [0.222700, 0.777300]]), atol=1e-4)
    match = soft.penalty["encoder.match"]  # [K=2, N=1, 2]
    assert torch.allclose(match[0, 0], torch.sigmoid(h1), atol=1e-6)
    assert torch.allclose(match[1, 0], torch.tensor([0.5, 0.75]), atol=1e-6)
    assert torch.equal(soft.penalty["encoder.input"], x[0])
    assert float(soft.penalty["encoder.psi"]) == 2.0
    assert torch.allclose(soft.penalty["encoder.spikes"], expected.sum().reshape(1), atol=1e-6)


def test_shapes_frames_become_psi_steps_each():
    stal = STAL(6, out_features=4, hidden=5, psi=3)
    x = torch.rand(2, 7, 6)  # two frames per sample
    trace = stal(x)
    assert trace.out.shape == trace.membrane.shape == (6, 7, 4)
    assert trace.spiking and stal.out_features == 4
    assert trace.penalty["encoder.input"].shape == (14, 6)
    assert trace.penalty["encoder.match"].shape == (2, 14, 6)
    assert trace.penalty["encoder.spikes"].shape == (14,)
    assert STAL((1, 2, 3)).out_features == 6  # an image is flattened; outputs default to the inputs


def test_frames_to_steps_keeps_each_frame_together():
    """Frame t of a sample occupies steps t * psi .. t * psi + psi - 1."""
    s = torch.arange(2 * 3 * 2).reshape(2, 3 * 2, 1)  # [psi=2, T*B = 3*2, 1]: value = k * 6 + t * 2 + b
    steps = frames_to_steps(s, 3)  # [6, 2, 1]
    for t in range(3):
        for k in range(2):
            for b in range(2):
                assert int(steps[t * 2 + k, b, 0]) == k * 6 + t * 2 + b


def test_thresholds_start_uniform_and_are_clamped():
    torch.manual_seed(0)
    stal = STAL(50, psi=5)
    theta = stal.threshold.theta.detach()
    assert theta.shape == (5, 50)
    assert float(theta.min()) >= 0.4 and float(theta.max()) <= 0.6 and float(theta.std()) > 0.03
    stal = small_stal()
    with torch.no_grad():
        stal.threshold.theta.copy_(torch.tensor([[-1.0, 5.0], [0.0005, 0.7]]))
    out = stal(torch.tensor([[[0.8, 0.2]]])).out[:, 0]
    expected = torch.tensor([[0.001, 1.0], [0.001, 0.7]])
    assert torch.equal(stal.threshold.theta.detach(), expected)
    assert out.tolist() == [[1.0, 0.0], [1.0, 0.0]]  # h2 = (0.4, 0.5) against the clamped thresholds


def test_gradients_reach_thresholds_and_every_parameter():
    torch.manual_seed(0)
    stal = STAL(6, hidden=8, psi=3).train()
    trace = stal(torch.rand(1, 16, 6))
    (trace.out.sum() + trace.penalty["encoder.match"].sum()).backward()
    grad = stal.threshold.theta.grad
    assert grad is not None and torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    assert float(grad.max()) <= 0  # more output spikes need lower thresholds
    assert all(p.grad is not None for p in stal.parameters())


def test_eval_spikes_are_binary_and_train_spikes_soft():
    torch.manual_seed(0)
    stal = STAL(6, psi=4)
    x = torch.rand(1, 32, 6)
    soft = stal.train()(x).out
    assert ((soft > 0) & (soft < 1)).any()
    trace = stal.eval()(x)
    assert set(trace.out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(trace.out, (trace.membrane > 0).float())


def test_batchnorm_is_frozen_in_eval():
    """In eval the running statistics stay put and a sample's spikes do not depend on its batch;
    in training they move."""
    torch.manual_seed(0)
    stal = STAL(6, psi=2)
    x = torch.rand(1, 20, 6)
    stal.train()(x)  # one training step of the statistics
    stats = {k: v.clone() for k, v in stal.state_dict().items() if "running" in k}
    stal.eval()
    alone = stal(x[:, :1]).out
    together = stal(x).out[:, :1]
    assert torch.equal(alone, together)
    assert all(torch.equal(v, stal.state_dict()[k]) for k, v in stats.items())
    stal.train()(x)
    assert not torch.equal(stats["block1.1.running_mean"], stal.block1[1].running_mean)


def test_deterministic_under_a_seed_with_dropout():
    def run(seed: int) -> torch.Tensor:
        seed_everything(seed)
        stal = build(validate({"type": "STAL", "psi": 3}, LAYERS, "encoder"), LAYERS, in_features=10)
        return stal.train()(torch.rand(1, 8, 10)).out

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))


def test_conv_stal_shapes_and_thresholds():
    conv = ConvSTAL((3, 8, 6), channels=4, psi=5)
    assert conv.threshold.theta.shape == (5, 3, 8, 6) and conv.out_features == (3, 8, 6)
    trace = conv(torch.rand(1, 2, 3, 8, 6))
    assert trace.out.shape == (5, 2, 3, 8, 6)
    assert trace.penalty["encoder.input"].shape == (2, 3, 8, 6)
    assert trace.penalty["encoder.match"].shape == (2, 2, 3, 8, 6)
    assert trace.penalty["encoder.spikes"].shape == (2,)
    assert ConvSTAL((1, 8, 8), out_channels=2).out_features == (2, 8, 8)
    assert ConvSTAL(12).out_features == (1, 1, 12)  # flat features: a one-row image


@pytest.mark.parametrize("pools, size", [(0, (8, 8)), (1, (4, 4)), (2, (2, 2))])
def test_conv_stal_ps_patches(pools, size):
    stem = ConvSTALPS((1, 8, 8), embed_dim=16, pools=pools, psi=3)
    assert stem.out_features == (16, *size)
    trace = stem(torch.rand(1, 4, 1, 8, 8))
    assert trace.out.shape == (3, 4, 16, *size)
    assert trace.penalty["encoder.match"].shape == (2, 4, 1, 8, 8)  # upsampled back to the image
    assert stem.threshold.theta.shape == (3, 16, *size)


def test_conv_stal_ps_refuses_an_odd_embedding():
    with pytest.raises(ConfigError, match=r"stem\.embed_dim must be even .* got 15"):
        validate({"type": "ConvSTALPS", "embed_dim": 15}, LAYERS, "stem")
    with pytest.raises(ConfigError, match=r"stem\.pools must be one of 0, 1, 2, got 3"):
        validate({"type": "ConvSTALPS", "pools": 3}, LAYERS, "stem")


def test_encoder_classifier_exposes_encoder_and_classifier():
    """The composite's children are named ``encoder`` and ``classifier`` (what a staged trial
    loads and freezes); its traces start with the encoder's, whose terms reach the penalties."""
    torch.manual_seed(0)
    spec = {"type": "EncoderClassifier", "encoder": {"type": "ConvSTAL", "channels": 4, "psi": 5},
            "classifier": {"type": "SRNN", "out_features": 10}}
    model = build(validate(spec, MODELS, "model"), MODELS, input_size=(1, 8, 8))
    assert [name for name, _ in model.named_children()] == ["encoder", "classifier"]
    assert isinstance(model.classifier, SRNN) and model.classifier.input_size == (1, 8, 8)
    assert all(name.startswith(("encoder.", "classifier.")) for name, _ in model.named_parameters())
    out = model(torch.rand(1, 3, 1, 8, 8))
    assert out.scores.shape == (3, 10) and model.out_features == 10
    assert out.traces[0].out.shape == (5, 3, 1, 8, 8) and len(out.traces) == 3
    assert set(out.penalties()) == {"encoder.input", "encoder.match", "encoder.spikes", "encoder.psi"}
    assert torch.equal(out.scores, out.traces[-1].out.sum(dim=0))


def test_encoder_classifier_equals_its_parts():
    torch.manual_seed(0)
    model = EncoderClassifier(6, STAL(6, psi=3), SRNN(6, 4)).eval()
    x = torch.rand(1, 5, 6)
    assert torch.equal(model(x).scores, model.classifier(model.encoder(x).out).scores)
