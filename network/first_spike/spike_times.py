"""First-spike times of current-based LIF neurons in closed form, with exact gradients
(specs/first_spike.md).

Time is in units of tau_s and the leak is ``g_l = tau_s / tau_m``: ``ratio = tau_m / tau_s`` is 1
or 2, the two cases with a closed form. A neuron with inputs at ``t_i`` (weights ``w_i``) has,
after the first ``k`` inputs in time order (its causal set),

- ratio 1: ``u(t) = e^{-t} (a1 t - b)`` with ``a1 = sum w e^{t_i}``, ``b = sum w t_i e^{t_i}``, and
  crosses ``theta`` at ``T = b/a1 - W0(-(c/a1) e^{b/a1})``;
- ratio 2: ``u(t) = 2 (a2 e^{-t/2} - a1 e^{-t})`` with ``a2 = sum w e^{t_i/2}``, and crosses at
  ``T = 2 ln(2 a1 / (a2 + sqrt(a2^2 - 4 a1 c)))``;

``c = g_l (theta - E_l)``. The spike time is the smallest ``T_k`` with ``t_(k) <= T_k <= t_(k+1)``;
+inf if there is none (found without evaluating every ``T_k``: :func:`crossing_times`). The backward pass uses the analytic derivatives of ``T`` with respect to the
weights and the input times of the causal set (inputs after ``T`` get none); a silent neuron, NaN or
inf gives zero gradient.

Shapes: input times ``[B, S, I]`` with ``S`` 1 (the same times for every neuron) or ``O`` (per-synapse
times: synaptic or dendritic delays), weights ``[O, I]``, thresholds ``c`` broadcastable to
``[B, O]``; output ``[B, O]``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from network.first_spike.lambertw import BRANCH_POINT, lambertw0

RATIOS = (1.0, 2.0)


def _finite_or_zero(x: Tensor) -> Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def crossing_times(t_sorted: Tensor, w_sorted: Tensor, c: Tensor, ratio: float) -> Tensor:
    """The first threshold crossing ``[B, O]`` (+inf: none) of neurons whose inputs are sorted by
    time along the last axis ``[B, O, I]``.

    Between its k-th and (k+1)-th input a neuron's membrane follows the prefix-k solution, which
    (for ``a1 > 0``, and ``a2 > 0`` at ratio 2) rises to one peak at ``t*`` (ratio 1:
    ``1 + b/a1``; ratio 2: ``2 ln(2 a1/a2)``) and falls after it; otherwise it cannot rise to a
    positive threshold. So the membrane reaches threshold in interval k iff it does at
    ``clamp(t*, t_k, t_{k+1})``. The spike lies in the first such interval; only there is the
    closed form (Lambert W, or the root of the quadratic) evaluated: one per (sample, neuron)
    instead of one per prefix. Equivalent to accepting the smallest ``T_k`` with
    ``t_k <= T_k <= t_{k+1}`` (tests/network/test_first_spike.py checks it against that search).
    """
    finite = torch.isfinite(t_sorted)  # [B, S, I]: the input side is computed once per sample
    t0 = _finite_or_zero(t_sorted)
    zero = torch.zeros((), dtype=t0.dtype, device=t0.device)
    wet = w_sorted * torch.where(finite, torch.exp(t0), zero)
    a1 = torch.cumsum(wet, dim=-1)
    nxt = torch.cat([t_sorted[..., 1:], torch.full_like(t_sorted[..., :1], math.inf)], dim=-1)
    cx = c.unsqueeze(-1)
    if ratio == 1.0:
        b = torch.cumsum(wet * t0, dim=-1)
        rising = a1 > 0
        peak = 1.0 + b / torch.where(rising, a1, torch.ones_like(a1))
        at = torch.minimum(torch.maximum(peak, t0), nxt)
        reach = torch.exp(-at) * (a1 * at - b)  # u at the interval's highest point
        theta = cx
    else:
        a2 = torch.cumsum(w_sorted * torch.where(finite, torch.exp(t0 / 2), zero), dim=-1)
        rising = (a1 > 0) & (a2 > 0)
        peak = 2.0 * torch.log(torch.where(rising, 2.0 * a1 / torch.where(rising, a2, torch.ones_like(a2)),
                                           torch.ones_like(a1)))
        at = torch.minimum(torch.maximum(peak, t0), nxt)
        reach = 2.0 * (a2 * torch.exp(-at / 2) - a1 * torch.exp(-at))
        theta = 2.0 * cx  # c = g_l theta with g_l = 1/2
    crosses = rising & finite & (reach >= theta)
    fired = crosses.any(dim=-1)
    k = crosses.to(torch.uint8).argmax(dim=-1, keepdim=True)  # the first interval that crosses
    A1 = a1.gather(-1, k).squeeze(-1)
    A1 = torch.where(fired, A1, torch.ones_like(A1))
    c2 = c.expand_as(A1)
    if ratio == 1.0:
        ba = b.gather(-1, k).squeeze(-1) / A1
        z = (-(c2 / A1) * torch.exp(ba)).clamp(min=BRANCH_POINT)
        T = ba - lambertw0(torch.where(fired, z, torch.zeros_like(z)))
    else:
        A2 = a2.gather(-1, k).squeeze(-1)
        root = torch.sqrt((A2 * A2 - 4 * A1 * c2).clamp(min=0))
        T = 2.0 * torch.log(torch.where(fired, 2.0 * A1 / (A2 + root), torch.ones_like(A1)))
    # the root lies in the crossing interval; clamp its last-bit error at the interval's ends
    shape = k.shape[:-1] + t0.shape[-1:]
    lo, hi = t0.expand(shape).gather(-1, k).squeeze(-1), nxt.expand(shape).gather(-1, k).squeeze(-1)
    T = torch.minimum(torch.maximum(T, lo), hi)
    return torch.where(fired, T, torch.full_like(T, math.inf))


def sort_inputs(t: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Input times sorted along the last axis ``[B, S, I]`` and the weights in the same order per
    (sample, neuron) ``[B, O, I]``."""
    B, S, I = t.shape
    O = w.shape[0]
    t_sorted, order = torch.sort(t, dim=-1)
    w_sorted = w.unsqueeze(0).expand(B, O, I).gather(2, order.expand(B, O, I))
    return t_sorted, w_sorted


def closed_form_times(t: Tensor, w: Tensor, c: Tensor, ratio: float) -> Tensor:
    """Spike times ``[B, O]`` from input times ``[B, S, I]`` and weights ``[O, I]`` (no graph)."""
    t_sorted, w_sorted = sort_inputs(t, w)
    return crossing_times(t_sorted, w_sorted, c.expand(t.shape[0], w.shape[0]), ratio)


def euler_times(t: Tensor, w: Tensor, c: Tensor, ratio: float, dt: float = 0.01, t_max: float | None = None) -> Tensor:
    """Spike times ``[B, O]`` by integrating ``du/dt = -u/ratio + I(t)`` with forward Euler at step
    ``dt`` (tau_s) up to ``t_max`` (default: the last finite input time + 10), the crossing
    interpolated linearly within its step; +inf where ``u`` stays below threshold."""
    B, O = t.shape[0], w.shape[0]
    finite = torch.isfinite(t)
    last = float(t[finite].max()) if bool(finite.any()) else 0.0
    t_max = last + 10.0 if t_max is None else t_max
    theta = (c * ratio).expand(B, O)  # c = g_l theta, g_l = 1 / ratio
    u = torch.zeros(B, O, dtype=w.dtype, device=w.device)
    T = torch.full((B, O), math.inf, dtype=w.dtype, device=w.device)
    t0 = _finite_or_zero(t)
    for n in range(int(math.ceil(t_max / dt))):
        now = n * dt
        arrived = finite & (t0 <= now)
        psc = torch.where(arrived, torch.exp(-(now - t0)), torch.zeros_like(t0))  # [B, S, I]
        current = (psc * w.unsqueeze(0)).sum(-1)  # [B, O]
        nxt = u + dt * (-u / ratio + current)
        crossed = torch.isinf(T) & (nxt >= theta)
        frac = (theta - u) / torch.where(nxt > u, nxt - u, torch.ones_like(u))
        T = torch.where(crossed, now + dt * frac.clamp(0.0, 1.0), T)
        u = nxt
        if not bool(torch.isinf(T).any()):
            break
    return T


def time_derivatives(t: Tensor, w: Tensor, c: Tensor, T: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """``dT/dw`` and ``dT/dt_i`` ``[B, O, I]`` at spike times ``T`` ``[B, O]``; zero for inputs outside
    the causal set (``t_i > T``), for silent neurons and wherever the formula is not finite."""
    B, O, I = t.shape[0], w.shape[0], w.shape[1]
    Tx = T.unsqueeze(-1)
    causal = torch.isfinite(t) & (t <= Tx) & torch.isfinite(Tx)
    t0 = torch.where(causal, t, torch.zeros_like(t))
    wx = w.unsqueeze(0)
    et = torch.where(causal, torch.exp(t0), torch.zeros_like(t0))
    a1 = (wx * et).sum(-1, keepdim=True)
    T0 = _finite_or_zero(Tx)
    cx = c.expand(B, O).unsqueeze(-1)
    if ratio == 1.0:
        b = (wx * t0 * et).sum(-1, keepdim=True)
        W = b / a1 - T0
        k = -1.0 / (a1 * (1.0 + W))
        dw = k * et * (T0 - t0)
        dt = k * wx * et * (T0 - t0 - 1.0)
    else:
        eth = torch.where(causal, torch.exp(t0 / 2), torch.zeros_like(t0))
        a2 = (wx * eth).sum(-1, keepdim=True)
        sqrt_d = torch.sqrt(a2 * a2 - 4 * a1 * cx)
        k = 1.0 + (cx / sqrt_d) * torch.exp(T0 / 2)
        dw = 2.0 * (k * et / a1 - eth / sqrt_d)
        dt = wx * (k * 2.0 * et / a1 - eth / sqrt_d)
    zero = torch.zeros((), dtype=w.dtype, device=w.device)
    dw = torch.where(causal & torch.isfinite(dw), dw, zero)
    dt = torch.where(causal & torch.isfinite(dt), dt, zero)
    return dw.expand(B, O, I), dt.expand(B, O, I)


class FirstSpikeTime(torch.autograd.Function):
    """``T = spike_time(t [B, S, I], w [O, I], c)`` with the analytic backward; ``c`` gets no
    gradient. ``max_dw_norm``: a (sample, neuron) whose largest ``|dL/dw|`` exceeds it gives no
    gradient at all (None: no guard). ``integrator``: ``closed_form`` or ``euler`` (at ``euler_dt``)."""

    @staticmethod
    def forward(ctx, t: Tensor, w: Tensor, c: Tensor, ratio: float, max_dw_norm: float | None,
                integrator: str, euler_dt: float) -> Tensor:
        if integrator == "euler":
            T = euler_times(t, w, c, ratio, euler_dt)
        else:
            T = closed_form_times(t, w, c, ratio)
        ctx.save_for_backward(t, w, c, T)
        ctx.ratio, ctx.max_dw_norm = ratio, max_dw_norm
        return T

    @staticmethod
    def backward(ctx, grad_T: Tensor):
        t, w, c, T = ctx.saved_tensors
        dw, dt = time_derivatives(t, w, c, T, ctx.ratio)
        g = _finite_or_zero(grad_T).unsqueeze(-1)
        gw, gt = g * dw, g * dt
        if ctx.max_dw_norm is not None:
            keep = gw.abs().amax(dim=-1, keepdim=True) <= ctx.max_dw_norm
            gw, gt = gw * keep, gt * keep
        grad_w = gw.sum(0) if ctx.needs_input_grad[1] else None
        grad_t = None
        if ctx.needs_input_grad[0]:
            grad_t = gt.sum(1, keepdim=True) if t.shape[1] == 1 else gt
        return grad_t, grad_w, None, None, None, None, None


def spike_times(t: Tensor, w: Tensor, c: Tensor, ratio: float, max_dw_norm: float | None = None,
                integrator: str = "closed_form", euler_dt: float = 0.01) -> Tensor:
    """First-spike times ``[B, O]`` (tau_s units) of neurons with weights ``w [O, I]`` for input
    times ``t`` ``[B, I]`` or ``[B, S, I]``; differentiable in ``t`` and ``w``."""
    if ratio not in RATIOS:
        raise ValueError(f"tau_m / tau_s must be 1 or 2 for the closed form, got {ratio:g}")
    if t.dim() == 2:
        t = t.unsqueeze(1)
    c = torch.as_tensor(c, dtype=w.dtype, device=w.device)
    while c.dim() < 2:
        c = c.unsqueeze(0)
    return FirstSpikeTime.apply(t, w, c, ratio, max_dw_norm, integrator, euler_dt)
