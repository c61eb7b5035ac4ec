"""Learning rules against their definitions: autograd at the same argmax, hand-computed cases."""
from __future__ import annotations

import pytest
import torch

from network.events import SpikeTimes
from network.losses import BinaryLoss
from network.network import Network
from network.rules import BPTT, PlasticityInduction, RuleContext, SingleSpikeLR
from settings.registries import LAYERS, READOUTS
from settings.registry import Factory
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


def test_plasticity_induction_hand_computed():
    """Batch of 4: two should fire (label 1); one of them never crosses threshold -> -eps * 1/4."""
    net = tempotron(5, 1)
    x = SpikeTimes(torch.tensor([[0, 1, 2, 3, 4]] * 4), 30)
    ctx = context(net, x, torch.tensor([1, 1, 0, 0]), graph=False)
    peak = ctx.output.traces[0].membrane.max(dim=0).values[:, 0]
    with torch.no_grad():  # force sample 0 above threshold and sample 1 below it
        assert peak.shape == (4,)
    rule = PlasticityInduction(eps=0.01, v_th=float(peak[0]) + 1e-9)  # threshold just above sample 0's peak
    rule.accumulate(ctx)
    silent_should_fire = int((peak[:2] < rule.v_th).sum())
    assert torch.allclose(net.layers[0].weight.grad, torch.full((1, 5), -0.01 * silent_should_fire / 4,
                                                                dtype=torch.float64))


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
