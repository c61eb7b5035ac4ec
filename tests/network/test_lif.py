"""LIF: the pure step, the fused recurrence against step-by-step autograd, CUBA, LI."""
from __future__ import annotations

import math

import pytest
import torch

from network.kernels.fused import leaky_recurrence, lif_recurrence
from network.kernels.lif import LIFKernel, LIFParameters, LIFState, LIKernel, lif_step
from network.surrogates import ATan, DoubleGaussian, FastSigmoid, Triangle


def test_step_by_hand():
    """alpha = exp(-1/10); u = alpha*0.5 + (1-alpha)*8 crosses 1 -> spike, soft reset subtracts 1."""
    alpha = torch.tensor(math.exp(-0.1), dtype=torch.float64)
    p = LIFParameters(alpha, None, 1.0, 0.0, "soft", False, FastSigmoid())
    state = LIFState(torch.tensor([[0.5, 0.5]], dtype=torch.float64), None)
    z, new = lif_step(torch.tensor([[8.0, 0.1]], dtype=torch.float64), state, p)
    u = float(alpha) * 0.5 + (1 - float(alpha)) * torch.tensor([8.0, 0.1], dtype=torch.float64)
    assert z.tolist() == [[1.0, 0.0]]
    assert torch.allclose(new.u[0], torch.stack([u[0] - 1.0, u[1]]))


def test_constant_input_matches_the_analytic_charging_curve():
    """No spikes below threshold: u_t = x (1 - alpha^(t+1))."""
    kernel = LIFKernel(size=1, tau_m=20.0, v_th=10.0).double()
    x = torch.full((50, 1, 1), 2.0, dtype=torch.float64)
    _, _, membrane = kernel.trace(x)
    alpha = math.exp(-1 / 20)
    expected = 2.0 * (1 - alpha ** torch.arange(1, 51, dtype=torch.float64))
    assert torch.allclose(membrane[:, 0, 0], expected, atol=1e-12)


CASES = [
    dict(reset="soft"), dict(reset="hard", v_reset=-0.2), dict(reset="none"),
    dict(reset="soft", detach_reset=True), dict(reset="hard", detach_reset=True),
    dict(reset="soft", tau_syn=5.0), dict(reset="soft", learn_tau=True), dict(reset="hard", tau_syn=4.0, learn_tau=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("surrogate", [FastSigmoid(), DoubleGaussian(), ATan(), Triangle()],
                         ids=lambda s: type(s).__name__)
def test_fused_gradients_equal_step_by_step_autograd(case, surrogate):
    torch.manual_seed(0)
    T, B, N = 40, 5, 7
    x = (torch.randn(T, B, N, dtype=torch.float64) * 2.0 + 1.5)
    upstream = torch.randn(T, B, N, dtype=torch.float64)
    results = []
    for fused in (True, False):
        kernel = LIFKernel(size=N, tau_m=8.0, surrogate=surrogate, fused=fused, **case).double()
        xi = x.clone().requires_grad_()
        out, state, membrane = kernel.trace(xi)
        loss = (out * upstream).sum() + (state.u ** 2).sum() + 0.1 * (membrane * upstream).sum()
        loss.backward()
        grads = [xi.grad] + [p.grad for p in kernel.parameters()]
        results.append((out.detach(), membrane.detach(), state.u.detach(), grads))
    (o1, m1, u1, g1), (o2, m2, u2, g2) = results
    assert torch.equal(o1, o2) and o1.sum() > 0
    assert torch.allclose(m1, m2, atol=1e-12) and torch.allclose(u1, u2, atol=1e-12)
    for a, b in zip(g1, g2):  # float64: equal to rounding (measured worst case ~3e-13)
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-10), (a - b).abs().max()


def test_fused_float32_matches_reference():
    torch.manual_seed(1)
    x = torch.randn(100, 8, 16) + 0.8
    grads = []
    for fused in (True, False):
        kernel = LIFKernel(size=16, tau_m=10.0, fused=fused)
        xi = x.clone().requires_grad_()
        out, _ = kernel(xi)
        out.sum().backward()
        grads.append(xi.grad)
    assert grads[0].abs().max() > 0.05  # spikes happened, the surrogate carried gradient
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-5)  # the float32 tolerance


def test_initial_state_gradient():
    torch.manual_seed(2)
    x = torch.randn(20, 3, 4, dtype=torch.float64)
    u0 = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(0.9, dtype=torch.float64)
    z, u, _ = lif_recurrence(x, alpha, u0, 1.0)
    (z.sum() + u.sum()).backward()
    g_fused = u0.grad.clone()
    u0.grad = None
    state, spikes = LIFState(u0, None), []
    p = LIFParameters(alpha, None, 1.0, 0.0, "soft", False, FastSigmoid())
    for t in range(20):
        zt, state = lif_step(x[t] / (1 - alpha), state, p)  # lif_step scales the input by (1 - alpha)
        spikes.append(zt)
    (torch.stack(spikes).sum() + state.u.sum()).backward()
    assert torch.allclose(g_fused, u0.grad, atol=1e-9)


def test_leaky_recurrence_and_li_kernel():
    torch.manual_seed(3)
    x = torch.randn(30, 2, 3, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64, requires_grad=True)
    y0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(leaky_recurrence, (x, a, y0))
    kernel = LIKernel(size=1, tau=5.0).double()
    step = torch.zeros(20, 1, 1, dtype=torch.float64)
    step[0] = 1.0
    v, _ = kernel(step)
    alpha = math.exp(-1 / 5)
    assert torch.allclose(v[:, 0, 0], (1 - alpha) * alpha ** torch.arange(20, dtype=torch.float64), atol=1e-12)


def test_surrogate_derivatives_match_their_primitives():
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    atan = ATan(a=2.0)
    (torch.atan(math.pi * atan.a * x / 2) / math.pi).sum().backward()
    assert torch.allclose(atan.derivative(x.detach()), x.grad, atol=1e-12)
    x.grad = None
    k = 5.0
    (x / (1 + k * x.abs()) / 1).sum().backward()  # d/dx [x / (1 + k|x|)] = 1 / (1 + k|x|)^2
    assert torch.allclose(FastSigmoid(k).derivative(x.detach()), x.grad, atol=1e-12)
    dg = DoubleGaussian()
    area = torch.trapezoid(dg.derivative(torch.linspace(-40, 40, 40001, dtype=torch.float64)),
                           dx=80 / 40000)
    assert float(area) == pytest.approx(dg.gamma * (1 + dg.p - 2 * dg.p), abs=1e-6)


def test_cuba_follows_the_spec_recurrence():
    """specs/resonators.md: ``I_t = a_s I_{t-1} + x_t``, ``U_t = b U_{t-1} + I_t - theta z_{t-1}``,
    ``z_t = H(U_t - theta)``: the soft reset takes exactly theta off the next step."""
    T, tau_m, tau_syn = 200, 20.0, 5.0
    x = torch.full((T, 1, 1), 0.15, dtype=torch.float64)
    b, a_s = math.exp(-1 / tau_m), math.exp(-1 / tau_syn)
    i = u = z = 0.0
    spikes, membrane = [], []
    for t in range(T):
        i = a_s * i + 0.15
        u = b * u + i - 1.0 * z
        z = float(u > 1.0)
        spikes.append(z)
        membrane.append(u)
    for fused in (True, False):
        out, _, trace = LIFKernel(size=1, tau_m=tau_m, tau_syn=tau_syn, fused=fused).double().trace(x)
        assert out[:, 0, 0].tolist() == spikes, fused
        assert torch.allclose(trace[:, 0, 0], torch.tensor(membrane, dtype=torch.float64), atol=1e-12)
    assert sum(spikes) == 149  # the decayed-reset variant would give 156
