"""The DEN (tempotron PSP) kernel against its analytic form."""
from __future__ import annotations

import math

import pytest
import torch

from network.events import SpikeTimes
from network.kernels.den import DENKernel, den_peak_time, den_v0
from network.kernels.filters import ExponentialTraces, causal_conv
from network.layers import Dense
from settings.registries import KERNELS
from settings.schema import create


def analytic(t: torch.Tensor, tau_m: float, tau_s: float) -> torch.Tensor:
    v0 = den_v0(tau_m, tau_s)
    return torch.where(t >= 0, v0 * (torch.exp(-t / tau_m) - torch.exp(-t / tau_s)), torch.zeros_like(t))


def test_v0_normalises_the_peak_to_one():
    assert den_v0(15.0, 3.75) == pytest.approx(2.1165, abs=1e-4)
    assert den_peak_time(15.0, 3.75) == pytest.approx(5 * math.log(4), abs=1e-12)
    t = torch.tensor([den_peak_time(15.0, 3.75)], dtype=torch.float64)
    assert float(analytic(t, 15.0, 3.75)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("tau_m, tau_s, dt", [(15.0, 3.75, 1.0), (20.0, 5.0, 0.5), (10.0, 2.0, 1.0)])
def test_simulated_response_equals_the_analytic_kernel(tau_m, tau_s, dt):
    T = 300
    kernel = DENKernel(size=1, tau_m=tau_m, tau_s=tau_s, dt=dt)
    x = torch.zeros(T, 2, 1)
    x[17, 0, 0] = 1.0  # one input spike of weight 1 at step 17
    x[3, 1, 0], x[50, 1, 0] = 0.5, -1.25  # superposition of two weighted spikes
    v, _ = kernel(x)
    t = torch.arange(T, dtype=torch.float64) * dt
    expected0 = analytic(t - 17 * dt, tau_m, tau_s)
    expected1 = 0.5 * analytic(t - 3 * dt, tau_m, tau_s) - 1.25 * analytic(t - 50 * dt, tau_m, tau_s)
    assert torch.allclose(v[:, 0, 0].double(), expected0, atol=1e-5)
    assert torch.allclose(v[:, 1, 0].double(), expected1, atol=1e-5)


def test_two_cascaded_filters_are_the_kernel_one_step_later():
    """I_t = b_s I_{t-1} + x_t, U_t = b_m U_{t-1} + I_t has h[t] = K((t+1) dt) / (V0 (b_m - b_s))."""
    tau_m, tau_s, T = 15.0, 3.75, 200
    b_m, b_s = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    current, membrane, h = 0.0, 0.0, []
    for t in range(T):
        current = b_s * current + (1.0 if t == 0 else 0.0)
        membrane = b_m * membrane + current
        h.append(membrane)
    h = torch.tensor(h, dtype=torch.float64)
    steps = torch.arange(T, dtype=torch.float64) + 1.0
    closed_form = (b_m ** steps - b_s ** steps) / (b_m - b_s)
    assert torch.allclose(h, closed_form, atol=1e-12)
    kernel = DENKernel(size=1, tau_m=tau_m, tau_s=tau_s)
    x = torch.zeros(T + 1, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    v, _ = kernel(x)
    assert torch.allclose(h, v[1:, 0, 0] / (kernel.v_0 * (b_m - b_s)), atol=1e-9)


def test_state_carries_a_sequence_across_chunks():
    torch.manual_seed(0)
    kernel = DENKernel(size=3)
    x = torch.randn(120, 4, 3, dtype=torch.float64)
    full, state_full = kernel(x)
    first, state = kernel(x[:70])
    second, state2 = kernel(x[70:], state)
    assert torch.allclose(torch.cat([first, second]), full, atol=1e-10)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(state2, state_full))


def test_event_input_equals_dense_raster():
    torch.manual_seed(1)
    times = torch.randint(-1, 100, (6, 40))
    events = SpikeTimes(times, 100)
    layer = Dense(40, 3, create("DENKernel", KERNELS, size=3))
    with torch.no_grad():
        by_events = layer(events).membrane
        by_raster = layer(events.to_dense()).membrane
    assert torch.allclose(by_events, by_raster, atol=1e-5)


def test_psp_at_is_the_kernel_at_the_lag():
    layer = Dense(3, 1, create("DENKernel", KERNELS, size=1))
    events = SpikeTimes(torch.tensor([[2, 10, -1]]), 30)
    psp = layer.psp(events, torch.tensor([[12]]))
    K = layer.kernel.impulse_response(30, dtype=torch.float32)
    assert torch.allclose(psp[0, 0], torch.stack([K[10], K[2], torch.tensor(0.0)]))


def test_long_sequences_are_computed_in_chunks_without_overflow():
    """exp(t / tau) overflows float64 past t / tau ~ 709: 3000 steps at tau_s = 1 run in chunks."""
    kernel = DENKernel(size=2, tau_m=4.0, tau_s=1.0)
    assert kernel._traces.chunk < 3000
    torch.manual_seed(2)
    x = torch.randn(3000, 2, 2, dtype=torch.float64)
    v, state = kernel(x)
    expected = causal_conv(x, kernel.impulse_response(3000))
    assert torch.isfinite(v).all()
    assert torch.allclose(v, expected, atol=1e-9)
    b_m = math.exp(-1 / 4.0)
    a_m = (x * b_m ** torch.arange(2999, -1, -1.0, dtype=torch.float64).reshape(-1, 1, 1)).sum(0)
    assert torch.allclose(state[0], kernel.v_0 * a_m, atol=1e-9)  # the state: V0 A_m and -V0 A_s


def test_exponential_traces_match_a_stepped_recurrence_with_initial_state():
    """``y_t = b y_{t-1} + c x_t`` from ``y_{-1} = a0``, for two taus and scales at once."""
    traces = ExponentialTraces((5.0, 2.0), dt=0.5, scales=(1.5, -0.5))
    torch.manual_seed(3)
    x = torch.randn(40, 3, dtype=torch.float64)
    a0 = torch.randn(2, 3, dtype=torch.float64)
    out = traces(x, a0)
    for k, (tau, c) in enumerate(((5.0, 1.5), (2.0, -0.5))):
        b, y = math.exp(-0.5 / tau), a0[k].clone()
        for t in range(40):
            y = b * y + c * x[t]
            assert torch.allclose(out[k, t], y, atol=1e-12)
