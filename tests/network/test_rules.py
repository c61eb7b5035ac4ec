"""Learning rules against their definitions: autograd at the same argmax, hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from network.events import SpikeTimes
from network.kernels.den import den_v0
from network.losses import BinaryLoss
from network.network import Network
from network.rules import BPTT, IntegrateLR, PlasticityInduction, RuleContext, SingleSpikeLR
from settings.registries import LAYERS, READOUTS
from settings.schema import Factory
from settings.schema import validate


def tempotron(n_in: int = 30, n_out: int = 1, seed: int = 0) -> Network:
    torch.manual_seed(seed)
    layer = Factory(LAYERS, validate({"type": "Dense", "out_features": n_out, "kernel": "DENKernel",
                                      "weight_init": {"type": "Normal", "mean": 0.05, "std": 0.1}}, LAYERS), "l")
    return Network(n_in, [layer], Factory(READOUTS, {"type": "MaxMembrane"}, "r")).double()


def context(net: Network, x, y: torch.Tensor, graph: bool) -> RuleContext:
    with torch.set_grad_enabled(graph):
        out = net(x)
    scores = out.scores if graph else out.scores.detach().requires_grad_()
    loss = BinaryLoss(v_th=0.5)(scores, y)
    return RuleContext(net, x, y, out, scores, loss)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("n_out", [1, 3])
def test_single_spike_lr_equals_autograd_of_max_voltage(dense, n_out):
    torch.manual_seed(3)
    times = torch.randint(-1, 80, (8, 30))
    x = SpikeTimes(times, 80)
    if dense:
        x = x.to_dense(torch.float64)
    y = torch.randint(0, max(n_out, 2), (8,))
    net = tempotron(30, n_out)
    ctx = context(net, x, y, graph=False)
    SingleSpikeLR().accumulate(ctx)
    rule_grad = net.layers[0].weight.grad.clone()
    net.zero_grad()
    # autograd through max_t V: the gradient flows only through V(t_max), t_max held at the argmax
    ctx = context(net, x, y, graph=True)
    BPTT().accumulate(ctx)
    assert torch.allclose(rule_grad, net.layers[0].weight.grad, atol=1e-10)
    assert rule_grad.abs().sum() > 0


def test_single_spike_lr_hand_computed():
    """Two afferents, spike at steps 0 and 5; t_max = 8; E = dL/dM = -1 for a missed fire (B = 1)."""
    net = tempotron(2, 1)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[0.1, 0.2]]))
    x = SpikeTimes(torch.tensor([[0, 5]]), 20)
    ctx = context(net, x, torch.tensor([1]), graph=False)
    t_max = int(ctx.output.readout.time_index[0, 0])
    K = net.layers[0].kernel.impulse_response(20)
    v = 0.1 * K + 0.2 * torch.cat([torch.zeros(5, dtype=K.dtype), K[:-5]])  # V(t) by hand
    assert t_max == int(torch.argmax(v))
    SingleSpikeLR().accumulate(ctx)
    expected = -torch.stack([K[t_max], K[t_max - 5]])
    assert torch.allclose(net.layers[0].weight.grad[0], expected, atol=1e-12)


ALL = [0, 0, 0, 0, 0]  # every afferent spikes at step 0: with unit weights the peak is 5 K_max = 5.00
ONE = [0, -1, -1, -1, -1]  # one afferent spikes: peak K_max = 1.00
TWO = [0, 0, -1, -1, -1]  # two afferents spike: peak 2 K_max = 2.00


def peaks(ctx: RuleContext) -> torch.Tensor:
    return ctx.output.traces[0].membrane.max(dim=0).values  # [B, O]


def test_plasticity_induction_hand_computed():
    """One output, threshold 3 between the peaks (5, 1, 2, 5, 1): of the three samples that should
    fire (label 1), the one that fires gets nothing and the two silent ones get -eps each; label 0
    samples never count, whether they fire (a false alarm) or not. Mean over the batch of 5:
    -0.01 * 2 / 5 = -0.004 on every afferent weight."""
    net = tempotron(5, 1)
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
    x = SpikeTimes(torch.tensor([ALL, ONE, TWO, ALL, ONE]), 30)
    ctx = context(net, x, torch.tensor([1, 1, 1, 0, 0]), graph=False)
    assert torch.allclose(peaks(ctx)[:, 0], torch.tensor([5.0, 1.0, 2.0, 5.0, 1.0], dtype=torch.float64), atol=1e-3)
    PlasticityInduction(eps=0.01, v_th=3.0).accumulate(ctx)
    assert torch.allclose(net.layers[0].weight.grad, torch.full((1, 5), -0.004, dtype=torch.float64), atol=1e-15)


def test_plasticity_induction_one_output_per_class():
    """Three outputs (row weights 1, 0.5, 0.1: peaks 5, 2.5, 0.5 for ALL and 1, 0.5, 0.1 for ONE),
    threshold 1.5. Only the labelled output of each sample may be induced: output 0 fires for
    sample 0 (nothing); output 1 fires for sample 1 and is silent for sample 2 (1 of 5); output 2
    is silent for samples 3 and 4 (2 of 5). Silent or firing outputs of other labels never count."""
    net = tempotron(5, 3)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0], [0.5], [0.1]]).expand(3, 5))
    x = SpikeTimes(torch.tensor([ALL, ALL, ONE, ALL, ONE]), 30)
    ctx = context(net, x, torch.tensor([0, 1, 1, 2, 2]), graph=False)
    expected_peaks = torch.tensor([[5.0, 2.5, 0.5], [5.0, 2.5, 0.5], [1.0, 0.5, 0.1], [5.0, 2.5, 0.5],
                                   [1.0, 0.5, 0.1]], dtype=torch.float64)
    assert torch.allclose(peaks(ctx), expected_peaks, atol=1e-3)
    PlasticityInduction(eps=0.01, v_th=1.5).accumulate(ctx)
    expected = torch.tensor([[0.0], [-0.002], [-0.004]], dtype=torch.float64).expand(3, 5)
    assert torch.allclose(net.layers[0].weight.grad, expected, atol=1e-15)


def test_several_rules_on_one_layer_add_up():
    torch.manual_seed(5)
    x = SpikeTimes(torch.randint(0, 60, (6, 30)), 60)
    y = torch.tensor([1, 0, 1, 0, 1, 1])
    grads = []
    for rules in ([SingleSpikeLR()], [PlasticityInduction(eps=0.05, v_th=0.5)],
                  [SingleSpikeLR(), PlasticityInduction(eps=0.05, v_th=0.5)]):
        net = tempotron(30, 1, seed=2)
        ctx = context(net, x, y, graph=False)
        for rule in rules:
            rule.accumulate(ctx)
        grads.append(net.layers[0].weight.grad.clone())
    assert torch.allclose(grads[0] + grads[1], grads[2], atol=1e-12)
    assert not torch.allclose(grads[0], grads[2])


def test_binary_loss_gradient_is_minus_y_on_errors_including_the_threshold():
    loss = BinaryLoss(v_th=1.0)
    scores = torch.tensor([[0.5], [1.0], [1.5], [0.2]], requires_grad=True)
    targets = torch.tensor([1, 1, 0, 0])  # miss, exactly at threshold (y s = 0: error), false alarm, correct
    value = loss(scores, targets)
    value.backward()
    assert value.item() == pytest.approx((0.5 + 0.0 + 0.5 + 0.0) / 4)
    assert scores.grad[:, 0].tolist() == [-0.25, -0.25, 0.25, 0.0]
    assert loss.predict(scores.detach()).tolist() == [0, 1, 1, 0]


def network(n_in: int, n_out: int, kernel: dict | str = "DENKernel", readout: dict | str = "MaxMembrane",
            seed: int = 0) -> Network:
    torch.manual_seed(seed)
    layer = Factory(LAYERS, validate({"type": "Dense", "out_features": n_out, "kernel": kernel,
                                      "weight_init": {"type": "Normal", "mean": 0.05, "std": 0.1}}, LAYERS), "l")
    return Network(n_in, [layer], Factory(READOUTS, validate(readout, READOUTS), "r")).double()


def rule_context(net: Network, x, y: torch.Tensor, graph: bool, v_th: float) -> RuleContext:
    with torch.set_grad_enabled(graph):
        out = net(x)
    scores = out.scores if graph else out.scores.detach().requires_grad_()
    return RuleContext(net, x, y, out, scores, BinaryLoss(v_th=v_th)(scores, y))


def autograd_grad(net: Network, x, y: torch.Tensor, v_th: float) -> torch.Tensor:
    net.zero_grad()
    BPTT().accumulate(rule_context(net, x, y, graph=True, v_th=v_th))
    return net.layers[0].weight.grad.clone()


@pytest.mark.parametrize("kernel", ["SequentialDENKernel", {"type": "LeakyKernel", "tau": 8.0}])
@pytest.mark.parametrize("dense", [False, True])
def test_single_spike_lr_equals_autograd_for_every_linear_kernel(kernel, dense):
    torch.manual_seed(4)
    x = SpikeTimes(torch.randint(-1, 60, (6, 20)), 60)
    x = x.to_dense(torch.float64) if dense else x
    y = torch.tensor([0, 1, 2, 1, 0, 2])
    net = network(20, 3, kernel)
    SingleSpikeLR().accumulate(rule_context(net, x, y, graph=False, v_th=0.5))
    rule_grad = net.layers[0].weight.grad.clone()
    assert rule_grad.abs().sum() > 0
    assert torch.allclose(rule_grad, autograd_grad(net, x, y, 0.5), atol=1e-10)


@pytest.mark.parametrize("kernel", ["DENKernel", "SequentialDENKernel", {"type": "LeakyKernel", "tau": 8.0}])
@pytest.mark.parametrize("dense", [False, True])
def test_eligibility_is_the_time_weighted_gradient_of_the_membrane(kernel, dense):
    """``eligibility(x, a)[b, o, i] = d(sum_t a[t, b, o] V[t, b, o]) / dW[o, i]`` for each sample b."""
    torch.manual_seed(5)
    x = SpikeTimes(torch.randint(-1, 40, (3, 12)), 40)
    x = x.to_dense(torch.float64) if dense else x
    net = network(12, 2, kernel)
    layer = net.layers[0]
    a = torch.randn(40, 3, 2, dtype=torch.float64)
    expected = []
    for b in range(3):
        layer.zero_grad()
        (a[:, b] * layer(x).membrane[:, b]).sum().backward()
        expected.append(layer.weight.grad.clone())
    assert torch.allclose(layer.eligibility(x, a), torch.stack(expected), atol=1e-10)
    at = torch.randint(0, 40, (3, 2))
    one_hot = torch.nn.functional.one_hot(at, 40).permute(2, 0, 1).to(torch.float64)
    assert torch.allclose(layer.psp(x, at), layer.eligibility(x, one_hot), atol=1e-12)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("n_out", [1, 3])
def test_integrate_lr_equals_autograd_of_the_soft_max_score(dense, n_out):
    torch.manual_seed(6)
    x = SpikeTimes(torch.randint(-1, 70, (8, 25)), 70)
    x = x.to_dense(torch.float64) if dense else x
    y = torch.randint(0, max(n_out, 2), (8,))
    readout = {"type": "SoftMaxMembrane", "beta": 3.0}
    net = network(25, n_out, readout=readout)
    v_th = 1.8  # about the median soft-max score here, so that there are errors of both kinds
    IntegrateLR(beta=3.0).accumulate(rule_context(net, x, y, graph=False, v_th=v_th))
    rule_grad = net.layers[0].weight.grad.clone()
    assert rule_grad.abs().sum() > 0
    # the spec's gradient is that of log(sum exp(beta V) dt) = beta x the readout's score
    assert torch.allclose(rule_grad, 3.0 * autograd_grad(net, x, y, v_th), atol=1e-10)


def test_integrate_lr_hand_computed():
    """One afferent spiking at step 0, w = 0.3, T = 4, beta = 2, dt = 1: V_t = w K(t), the score is
    s = log(sum_t exp(beta V_t)) / beta; a missed fire (B = 1) has E = -1, so the spec's
    dL/dw = -beta sum_t p_t K(t) with p = softmax(beta V)."""
    K = [den_v0(15.0, 3.75) * (math.exp(-t / 15.0) - math.exp(-t / 3.75)) for t in range(4)]
    beta, w = 2.0, 0.3
    e = [math.exp(beta * w * k) for k in K]
    expected = -beta * sum(ei * k for ei, k in zip(e, K)) / sum(e)
    net = network(1, 1, readout={"type": "SoftMaxMembrane", "beta": beta})
    with torch.no_grad():
        net.layers[0].weight.fill_(w)
    ctx = rule_context(net, SpikeTimes(torch.tensor([[0]]), 4), torch.tensor([1]), graph=False, v_th=10.0)
    assert float(ctx.scores.detach()[0, 0]) == pytest.approx(math.log(sum(e)) / beta, abs=1e-12)
    IntegrateLR(beta=beta).accumulate(ctx)
    assert float(net.layers[0].weight.grad[0, 0]) == pytest.approx(expected, abs=1e-12)


def test_soft_max_score_is_on_the_membrane_scale():
    """A silent tempotron (V = 0 throughout, T = 500, beta = 50) scores log(500) / 50 = 0.124 < v_th:
    it does not fire; a peak of about 1.2 scores between the peak and the peak + log(500) / 50."""
    net = network(3, 1, readout={"type": "SoftMaxMembrane", "beta": 50.0})
    with torch.no_grad():
        net.layers[0].weight.zero_()
    scores = net(SpikeTimes(torch.tensor([[0, 10, 20]]), 500)).scores.detach()
    assert float(scores[0, 0]) == pytest.approx(math.log(500) / 50, abs=1e-9)
    assert BinaryLoss(v_th=1.0).predict(scores).tolist() == [0]
    with torch.no_grad():
        net.layers[0].weight.fill_(0.4)
    out = net(SpikeTimes(torch.tensor([[0, 0, 0]]), 500))
    peak = float(out.traces[-1].membrane.detach().max())
    assert peak == pytest.approx(1.2, abs=1e-3)  # the kernel's peak (t* = 6.93) sampled at whole steps
    assert peak < float(out.scores.detach()[0, 0]) < peak + math.log(500) / 50


def test_integrate_lr_checks_its_readout():
    x = SpikeTimes(torch.randint(0, 30, (2, 5)), 30)
    net = network(5, 1, readout={"type": "SoftMaxMembrane", "beta": 4.0})
    with pytest.raises(ValueError, match="beta"):
        IntegrateLR(beta=50.0).accumulate(rule_context(net, x, torch.tensor([1, 0]), graph=False, v_th=1.0))
    net = network(5, 1, readout="SpikeCount")
    with pytest.raises(TypeError, match="MaxMembrane"):
        IntegrateLR().accumulate(rule_context(net, x, torch.tensor([1, 0]), graph=False, v_th=1.0))


def test_all_three_rules_on_one_layer_add_up():
    torch.manual_seed(7)
    x = SpikeTimes(torch.randint(0, 60, (6, 30)), 60)
    y = torch.tensor([1, 0, 1, 0, 1, 1])
    rules = [SingleSpikeLR(), IntegrateLR(beta=5.0), PlasticityInduction(eps=0.05, v_th=0.5)]
    grads = []
    for chosen in ([rules[0]], [rules[1]], [rules[2]], rules):
        net = network(30, 1, seed=2)
        ctx = rule_context(net, x, y, graph=False, v_th=0.5)
        for rule in chosen:
            rule.accumulate(ctx)
        grads.append(net.layers[0].weight.grad.clone())
    assert all(g.abs().sum() > 0 for g in grads[:3])
    assert torch.allclose(grads[0] + grads[1] + grads[2], grads[3], atol=1e-12)


def test_one_tempotron_per_class_learns_digits():
    """Multi-output BinaryLoss: output c should fire iff the label is c; the prediction is the
    output with the highest peak. Two epochs on latency-coded Digits are far above chance (0.1)."""
    from testkit import make_pipeline

    config = {"data": {"type": "Digits", "val_fraction": 0.0, "test_fraction": 0.2},
              "encoder": {"type": "LatencyEncoder", "T": 30, "direction": "early", "silent_below": 0.0},
              "model": {"layers": [{"type": "Dense", "out_features": 10, "kernel": "DENKernel",
                                    "weight_init": {"type": "Normal", "mean": 0.0, "std": 0.01}}],
                        "readout": "MaxMembrane"},
              "loss": "BinaryLoss", "learning_rule": ["SingleSpikeLR", {"type": "PlasticityInduction", "eps": 1e-3}],
              "optimizer": {"type": "MomentumOptimizer", "lr": 0.03, "momentum": 0.9},
              "epochs": 2, "batch_size": 16}
    result = make_pipeline(config).fit(seed=0)
    assert result.history[0]["test_acc"] < 0.3
    assert result.history[-1]["test_acc"] > 0.75
