"""The same closed-form first-spike times with plain autograd (benchmark reference).

Every causal prefix gets its candidate time ``T_k`` (the spec's search written out as tensors),
the accepted smallest one is kept, and torch's autograd differentiates through the prefix sums,
the Lambert W Halley iterations (ratio 1) or the square root and logarithm (ratio 2). This is how
one would write the model without a custom backward; FirstSpikeLIF's analytic backward and its
one-closed-form-per-neuron search are measured against it (benchmarks/bench_first_spike.py).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def lambertw_autograd(z: Tensor, iterations: int = 8) -> Tensor:
    """W0 by Halley iterations that autograd records (differentiable through every step)."""
    p = torch.sqrt((2 * (math.e * z + 1)).clamp(min=1e-30))
    L = torch.log1p(z.clamp(min=-0.25))
    w = torch.where(z < -0.25, -1 + p - p * p / 3 + 11 / 72 * p ** 3, L * (1 - torch.log1p(L) / (2 + L)))
    for _ in range(iterations):
        ew = torch.exp(w)
        f = w * ew - z
        w = w - f / (ew * (w + 1) - (w + 2) * f / (2 * w + 2))
    return w


def autograd_spike_times(t: Tensor, w: Tensor, theta: float, ratio: float) -> Tensor:
    """Spike times ``[B, O]`` of inputs ``t [B, I]`` and weights ``w [O, I]`` (tau_s = 1)."""
    B, I = t.shape
    O = w.shape[0]
    c = theta / ratio
    t_sorted, order = torch.sort(t, dim=-1)
    w_sorted = w.unsqueeze(0).expand(B, O, I).gather(2, order.unsqueeze(1).expand(B, O, I))
    ts = t_sorted.unsqueeze(1)
    a1 = torch.cumsum(w_sorted * torch.exp(ts), dim=-1)
    ok = a1 > 0
    a1s = torch.where(ok, a1, torch.ones_like(a1))
    if ratio == 1.0:
        b = torch.cumsum(w_sorted * ts * torch.exp(ts), dim=-1)
        z = -(c / a1s) * torch.exp(b / a1s)
        ok = ok & (z >= -1 / math.e)
        T = b / a1s - lambertw_autograd(torch.where(ok, z, torch.zeros_like(z)))
    else:
        a2 = torch.cumsum(w_sorted * torch.exp(ts / 2), dim=-1)
        D = a2 * a2 - 4 * a1s * c
        ok = ok & (D > 0)
        arg = 2 * a1s / (a2 + torch.sqrt(torch.where(ok, D, torch.ones_like(D))))
        ok = ok & (arg > 0)
        T = 2 * torch.log(torch.where(ok, arg, torch.ones_like(arg)))
    nxt = torch.cat([ts[..., 1:], torch.full_like(ts[..., :1], math.inf)], dim=-1).expand(B, O, I)
    accept = ok & (T >= ts) & (T <= nxt)
    return torch.where(accept, T, torch.full_like(T, math.inf)).amin(dim=-1)
