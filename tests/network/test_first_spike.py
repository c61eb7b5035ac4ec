"""Closed-form first-spike times: Lambert W, spike times that solve u(T) = theta first, exact
gradients against central finite differences (float64), the causal-set edge, silence, guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch

from network.first_spike.lambertw import lambertw0
from network.first_spike.spike_times import closed_form_times, euler_times, spike_times

F64 = torch.float64


def membrane(t_eval: np.ndarray, t_in: np.ndarray, w: np.ndarray, ratio: float) -> np.ndarray:
    """u(t) of one neuron from the analytic PSP (tau_s = 1, g_l = 1 / ratio)."""
    lag = t_eval[:, None] - t_in[None, :]
    on = lag >= 0
    lag = np.where(on, lag, 0.0)
    if ratio == 1.0:
        psp = lag * np.exp(-lag)
    else:
        psp = 2.0 * (np.exp(-lag / 2) - np.exp(-lag))
    return (np.where(on, psp, 0.0) * w[None, :]).sum(1)


def test_lambertw_equals_scipy_on_a_grid_to_1e_12() -> None:
    z = np.concatenate([-1 / math.e + np.logspace(-6, -0.5, 300), np.linspace(-0.3, 5.0, 500),
                        np.logspace(0, 6, 200), [0.0]])
    ours = lambertw0(torch.tensor(z, dtype=F64)).numpy()
    np.testing.assert_allclose(ours, scipy.special.lambertw(z, 0).real, rtol=1e-12, atol=1e-12)


def test_lambertw_next_to_the_branch_point() -> None:
    mpmath = pytest.importorskip("mpmath")
    z = -1 / math.e + np.logspace(-15, -6, 40)
    ours = lambertw0(torch.tensor(z, dtype=F64)).numpy()
    exact = np.array([float(mpmath.lambertw(mpmath.mpf(float(x)))) for x in z])
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-13)
    at = lambertw0(torch.tensor([-1 / math.e, -0.5], dtype=F64))
    assert at[0].item() == pytest.approx(-1.0, abs=1e-7) and math.isnan(at[1].item())


def test_lambertw_float32() -> None:
    z = np.linspace(-0.3, 20.0, 500)
    ours = lambertw0(torch.tensor(z, dtype=torch.float32))
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.double().numpy(), scipy.special.lambertw(z, 0).real, rtol=2e-6, atol=2e-6)


def random_problem(seed: int, B: int = 6, I: int = 5, O: int = 4, mean: float = 1.2):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(B, I, generator=g, dtype=F64) * 2.0
    w = torch.randn(O, I, generator=g, dtype=F64) + mean
    return t, w


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_spike_time_is_the_first_threshold_crossing(ratio: float) -> None:
    t, w = random_problem(1, mean=0.6)
    theta = 1.0
    T = closed_form_times(t.unsqueeze(1), w, torch.tensor([[theta / ratio]], dtype=F64), ratio)
    assert torch.isfinite(T).sum() > 10 and (~torch.isfinite(T)).sum() >= 1
    grid = np.linspace(0, 12, 24001)
    for b in range(t.shape[0]):
        for o in range(w.shape[0]):
            u = membrane(grid, t[b].numpy(), w[o].numpy(), ratio)
            crossed = np.flatnonzero(u >= theta)
            if math.isinf(T[b, o]):
                assert crossed.size == 0
                continue
            Tb = T[b, o].item()
            assert membrane(np.array([Tb]), t[b].numpy(), w[o].numpy(), ratio)[0] == pytest.approx(theta, abs=1e-10)
            assert grid[crossed[0]] == pytest.approx(Tb, abs=1e-3)  # the first crossing, not a later one


def finite_difference(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        up, down = x.clone(), x.clone()
        up.view(-1)[k] += eps
        down.view(-1)[k] -= eps
        flat[k] = (fn(up) - fn(down)) / (2 * eps)
    return grad


def finite_sum(T: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(T), T * coef, torch.zeros_like(T)).sum()


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_gradients_equal_central_finite_differences(ratio: float) -> None:
    t, w = random_problem(2)
    coef = torch.randn(t.shape[0], w.shape[0], generator=torch.Generator().manual_seed(3), dtype=F64)
    c = torch.tensor([[1.0 / ratio]], dtype=F64)
    tt, ww = t.clone().requires_grad_(), w.clone().requires_grad_()
    T = spike_times(tt, ww, c, ratio)
    assert torch.isfinite(T).sum() > 10
    finite_sum(T, coef).backward()
    fd_w = finite_difference(lambda v: finite_sum(closed_form_times(t.unsqueeze(1), v, c, ratio), coef), w)
    fd_t = finite_difference(lambda v: finite_sum(closed_form_times(v.unsqueeze(1), w, c, ratio), coef), t)
    torch.testing.assert_close(ww.grad, fd_w, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(tt.grad, fd_t, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_gradients_at_the_edge_of_the_causal_set(ratio: float) -> None:
    """An input arriving just after the spike is outside the causal set: no gradient to it, and
    the gradients of the others are those of the smaller set (finite differences that stay on
    one side of the edge)."""
    c = torch.tensor([[1.0 / ratio]], dtype=F64)
    w = torch.tensor([[2.5, 1.0, -3.0]], dtype=F64)
    t_two = torch.tensor([[0.0, 0.2]], dtype=F64)
    T0 = closed_form_times(t_two.unsqueeze(1), w[:, :2], c, ratio).item()
    assert math.isfinite(T0)
    t = torch.tensor([[0.0, 0.2, T0 + 1e-4]], dtype=F64)  # the inhibitory input comes just too late
    tt, ww = t.clone().requires_grad_(), w.clone().requires_grad_()
    T = spike_times(tt, ww, c, ratio)
    assert T.item() == pytest.approx(T0, abs=1e-12)
    T.sum().backward()
    assert tt.grad[0, 2].item() == 0.0 and ww.grad[0, 2].item() == 0.0
    fd_w = finite_difference(lambda v: closed_form_times(t.unsqueeze(1), v, c, ratio).sum(), w, eps=1e-7)
    fd_t = finite_difference(lambda v: closed_form_times(v.unsqueeze(1), w, c, ratio).sum(), t, eps=1e-7)
    torch.testing.assert_close(ww.grad, fd_w, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(tt.grad, fd_t, rtol=1e-5, atol=1e-7)
    # moved just before the spike, it joins the causal set and delays the spike
    t_before = torch.tensor([[0.0, 0.2, T0 - 1e-3]], dtype=F64)
    assert closed_form_times(t_before.unsqueeze(1), w, c, ratio).item() > T0


def test_silent_neurons_give_inf_and_no_gradient() -> None:
    t = torch.tensor([[0.1, 0.5], [math.inf, math.inf]], dtype=F64, requires_grad=True)
    w = torch.tensor([[0.3, 0.2], [5.0, 5.0]], dtype=F64, requires_grad=True)
    T = spike_times(t, w, torch.tensor([[1.0]], dtype=F64), 1.0)
    T0 = T.detach()
    assert math.isinf(T0[0, 0]) and math.isfinite(T0[0, 1]) and torch.isinf(T0[1]).all()
    (T[0, 1] + torch.where(torch.isfinite(T), T, 0).sum()).backward()
    assert torch.isfinite(t.grad).all() and torch.isfinite(w.grad).all()
    assert w.grad[0].abs().sum() == 0 and t.grad[1].abs().sum() == 0


def test_grazing_threshold_gives_finite_gradients() -> None:
    """Exactly at the branch point (the membrane touches threshold) 1/(1 + W) is infinite: the
    guard returns zero gradient instead of NaN or inf."""
    w = torch.tensor([[math.e]], dtype=F64, requires_grad=True)  # u(t) = e t e^{-t} peaks at 1
    t = torch.zeros(1, 1, dtype=F64, requires_grad=True)
    T = spike_times(t, w, torch.tensor([[1.0]], dtype=F64), 1.0)
    assert T.item() == pytest.approx(1.0, abs=1e-6)
    T.sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(t.grad).all()


def test_max_dw_norm_drops_large_gradients() -> None:
    t, w = random_problem(4)
    c = torch.tensor([[1.0]], dtype=F64)
    ww = w.clone().requires_grad_()
    spike_times(t, ww, c, 1.0).nan_to_num(posinf=0.0).sum().backward()
    per_pair = ww.grad.abs().max()
    guarded = w.clone().requires_grad_()
    spike_times(t, guarded, c, 1.0, max_dw_norm=1e-9).nan_to_num(posinf=0.0).sum().backward()
    assert per_pair > 0 and guarded.grad.abs().max() == 0


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_euler_forward_approaches_the_closed_form(ratio: float) -> None:
    t, w = random_problem(5)
    c = torch.tensor([[1.0 / ratio]], dtype=F64)
    exact = closed_form_times(t.unsqueeze(1), w, c, ratio)
    euler = euler_times(t.unsqueeze(1), w, c, ratio, dt=1e-3)
    assert torch.equal(torch.isfinite(exact), torch.isfinite(euler))
    fired = torch.isfinite(exact)
    assert (euler[fired] - exact[fired]).abs().max() < 5e-3


def test_float32_matches_float64() -> None:
    t, w = random_problem(6)
    for ratio in (1.0, 2.0):
        c = torch.tensor([[1.0 / ratio]])
        T64 = closed_form_times(t.unsqueeze(1), w, c.double(), ratio)
        T32 = closed_form_times(t.float().unsqueeze(1), w.float(), c, ratio)
        fired = torch.isfinite(T64) & torch.isfinite(T32)
        assert fired.sum() >= torch.isfinite(T64).sum() - 1
        assert (T32[fired].double() - T64[fired]).abs().max() < 1e-4


def every_prefix_search(t: torch.Tensor, w: torch.Tensor, theta: float, ratio: float) -> torch.Tensor:
    """The spec's search written out: T_k of every causal prefix k, accepted iff
    t_(k) <= T_k <= t_(k+1); the smallest accepted one (one neuron at a time, in float64)."""
    B, O = t.shape[0], w.shape[0]
    out = torch.full((B, O), math.inf, dtype=F64)
    c = theta / ratio
    for b in range(B):
        order = torch.argsort(t[b])
        ts = t[b][order]
        for o in range(O):
            ws = w[o][order]
            for k in range(len(ts)):
                if not math.isfinite(ts[k]):
                    break
                tk, wk = ts[: k + 1], ws[: k + 1]
                a1 = float((wk * torch.exp(tk)).sum())
                if ratio == 1.0:
                    bb = float((wk * tk * torch.exp(tk)).sum())
                    if a1 <= 0:
                        continue
                    z = -(c / a1) * math.exp(bb / a1)
                    if z < -1 / math.e:
                        continue
                    T = bb / a1 - scipy.special.lambertw(z, 0).real
                else:
                    a2 = float((wk * torch.exp(tk / 2)).sum())
                    D = a2 * a2 - 4 * a1 * c
                    if D < 0 or a2 + math.sqrt(D) == 0 or 2 * a1 / (a2 + math.sqrt(D)) <= 0:
                        continue
                    T = 2 * math.log(2 * a1 / (a2 + math.sqrt(D)))
                upper = float(ts[k + 1]) if k + 1 < len(ts) else math.inf
                if float(ts[k]) <= T <= upper:
                    out[b, o] = T
                    break
    return out


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_interval_search_equals_the_search_over_every_prefix(ratio: float) -> None:
    g = torch.Generator().manual_seed(11)
    t = torch.rand(40, 7, generator=g, dtype=F64) * 3.0
    t[torch.rand(40, 7, generator=g) < 0.15] = math.inf  # some silent inputs
    w = torch.randn(9, 7, generator=g, dtype=F64) * 1.5 + 0.4  # excitation and inhibition
    T = closed_form_times(t.unsqueeze(1), w, torch.tensor([[1.0 / ratio]], dtype=F64), ratio)
    ref = every_prefix_search(t, w, 1.0, ratio)
    assert torch.equal(torch.isfinite(T), torch.isfinite(ref))
    assert 50 < int(torch.isfinite(ref).sum()) < 340
    fired = torch.isfinite(ref)
    torch.testing.assert_close(T[fired], ref[fired], rtol=0, atol=1e-10)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_analytic_backward_equals_autograd_through_the_closed_form(ratio: float) -> None:
    """benchmarks/reference_first_spike.py differentiates the same closed form with autograd
    (through the Lambert W iterations); the analytic backward agrees with it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from reference_first_spike import autograd_spike_times

    t, w = random_problem(8, B=10, I=6, O=5)
    coef = torch.randn(10, 5, generator=torch.Generator().manual_seed(9), dtype=F64)
    t1, w1 = t.clone().requires_grad_(), w.clone().requires_grad_()
    T1 = spike_times(t1, w1, torch.tensor([[1.0 / ratio]], dtype=F64), ratio)
    finite_sum(T1, coef).backward()
    t2, w2 = t.clone().requires_grad_(), w.clone().requires_grad_()
    T2 = autograd_spike_times(t2, w2, 1.0, ratio)
    finite_sum(T2, coef).backward()
    torch.testing.assert_close(T1.detach(), T2.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(t1.grad, t2.grad, rtol=1e-8, atol=1e-10)
