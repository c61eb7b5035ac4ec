"""The stepped kernels (SequentialDENKernel, LeakyKernel) against their analytic responses, a
hand-stepped loop and the DEN kernel."""
from __future__ import annotations

import math

import pytest
import torch

from network.kernels.den import DENKernel, den_v0
from network.kernels.stepped import LeakyKernel, SequentialDENKernel
from settings.errors import ConfigError
from settings.registries import KERNELS
from settings.schema import validate

TAUS = [(15.0, 3.75, 1.0), (2.5, 10.0, 1.0), (20.0, 5.0, 0.5)]


def impulse(T: int, at: int = 0, B: int = 1) -> torch.Tensor:
    x = torch.zeros(T, B, 1, dtype=torch.float64)
    x[at] = 1.0
    return x


@pytest.mark.parametrize("tau_m, tau_s, dt", TAUS)
def test_sequential_impulse_response_is_the_closed_form(tau_m, tau_s, dt):
    """Unscaled: h[t] = (b_m^(t+1) - b_s^(t+1)) / (b_m - b_s), and the simulation gives it."""
    T = 200
    kernel = SequentialDENKernel(size=1, tau_m=tau_m, tau_s=tau_s, scaled=False, dt=dt)
    b_m, b_s = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
    k = torch.arange(1, T + 1, dtype=torch.float64)
    closed = (b_m ** k - b_s ** k) / (b_m - b_s)
    v, _ = kernel(impulse(T))
    assert torch.allclose(v[:, 0, 0], closed, atol=1e-12)
    assert torch.allclose(kernel.impulse_response(T), closed, atol=1e-12)


@pytest.mark.parametrize("tau_m, tau_s, dt", TAUS)
def test_scaled_sequential_kernel_is_the_den_kernel_one_step_later(tau_m, tau_s, dt):
    """Scaled by V0 (b_m - b_s): seq[t] = K((t + 1) dt), so on any input seq(x)[t] = DEN(x)[t + 1]."""
    T = 150
    seq = SequentialDENKernel(size=2, tau_m=tau_m, tau_s=tau_s, dt=dt)
    den = DENKernel(size=2, tau_m=tau_m, tau_s=tau_s, dt=dt)
    t = torch.arange(1, T + 1, dtype=torch.float64) * dt
    analytic = den_v0(tau_m, tau_s) * (torch.exp(-t / tau_m) - torch.exp(-t / tau_s))
    v, _ = seq(impulse(T, B=1).expand(T, 1, 2).contiguous())
    assert torch.allclose(v[:, 0, 0], analytic, atol=1e-10)
    assert torch.allclose(seq.impulse_response(T), analytic, atol=1e-12)
    assert float(analytic.max()) == pytest.approx(1.0, abs=0.01)  # the DEN peak, sampled on the grid
    torch.manual_seed(0)
    x = torch.randn(T + 1, 3, 2, dtype=torch.float64)
    by_steps, _ = seq(x)
    by_den, _ = den(x)
    assert torch.allclose(by_steps[:-1], by_den[1:], atol=1e-9)


def test_sequential_kernel_equals_a_hand_stepped_loop_and_carries_state():
    tau_m, tau_s, T = 15.0, 3.75, 60
    b_m, b_s = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    kernel = SequentialDENKernel(size=1, tau_m=tau_m, tau_s=tau_s)
    torch.manual_seed(1)
    x = torch.randn(T, 1, 1, dtype=torch.float64)
    current, membrane, expected = 0.0, 0.0, []
    for t in range(T):
        current = b_s * current + float(x[t, 0, 0])
        membrane = b_m * membrane + current
        expected.append(kernel.scale * membrane)
    v, state = kernel(x)
    assert torch.allclose(v[:, 0, 0], torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    first, mid = kernel(x[:25])
    second, end = kernel(x[25:], mid)
    assert torch.allclose(torch.cat([first, second]), v, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(end, state))


@pytest.mark.parametrize("tau, dt", [(15.0, 1.0), (4.0, 0.5)])
def test_leaky_kernel_impulse_response_is_b_to_the_t(tau, dt):
    T = 120
    kernel = LeakyKernel(size=1, tau=tau, dt=dt)
    expected = math.exp(-dt / tau) ** torch.arange(T, dtype=torch.float64)
    v, state = kernel(impulse(T))
    assert torch.allclose(v[:, 0, 0], expected, atol=1e-12)
    assert torch.allclose(kernel.impulse_response(T), expected, atol=1e-12)
    assert kernel.spiking is False and torch.allclose(state, v[-1])


def test_leaky_kernel_spike_flag_without_reset_keeps_the_linear_membrane():
    torch.manual_seed(2)
    x = torch.rand(80, 4, 3, dtype=torch.float64) * 0.4
    linear, _ = LeakyKernel(size=3, tau=10.0)(x)
    spiking = LeakyKernel(size=3, tau=10.0, spike=True, v_th=1.5)
    spikes, _, membrane = spiking.trace(x)
    assert spiking.spiking is True
    assert torch.allclose(membrane, linear, atol=1e-12)
    assert torch.equal(spikes, (linear > 1.5).to(spikes.dtype))
    assert spikes.sum() > 0


def test_leaky_kernel_hard_reset_equals_a_hand_stepped_loop():
    b, v_th, v_reset = math.exp(-1 / 5.0), 1.0, -0.2
    torch.manual_seed(3)
    x = torch.rand(50, 1, 1, dtype=torch.float64) * 0.6
    u, spikes, pre = 0.0, [], []
    for t in range(50):
        u = b * u + float(x[t, 0, 0])
        pre.append(u)
        fired = u > v_th
        spikes.append(1.0 if fired else 0.0)
        if fired:
            u = v_reset
    kernel = LeakyKernel(size=1, tau=5.0, spike=True, reset=True, v_th=v_th, v_reset=v_reset)
    z, state, membrane = kernel.trace(x)
    assert z[:, 0, 0].tolist() == spikes and sum(spikes) >= 3
    assert torch.allclose(membrane[:, 0, 0], torch.tensor(pre, dtype=torch.float64), atol=1e-12)
    assert float(state[0, 0]) == pytest.approx(u, abs=1e-12)
    with pytest.raises(TypeError, match="not linear"):
        kernel.impulse_response(10)


def test_kernels_reject_contradictory_settings():
    with pytest.raises(ConfigError, match="reset"):
        validate({"type": "LeakyKernel", "reset": True}, KERNELS, "kernel")
    with pytest.raises(ConfigError, match="tau_s"):
        validate({"type": "SequentialDENKernel", "tau_m": 5.0, "tau_s": 5.0}, KERNELS, "kernel")
