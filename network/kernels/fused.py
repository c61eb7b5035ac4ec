"""Fused LIF recurrences: a forward loop without autograd graph and a hand-written reverse-time
backward that saves only the pre-reset membrane.

Both recurrences are time-major (``[T, B, N]``) and take the input current already multiplied by
the synaptic weights (the matrix product is done once for all steps, outside).

LIF (``lif_recurrence``)::

    p_t = alpha * u_{t-1} + x_t          (pre-reset membrane)
    z_t = H(p_t - v_th)                  (spike; surrogate derivative s_t in the backward)
    u_t = p_t - v_th z_t                 (soft reset)  | p_t (1 - z_t) + v_reset z_t (hard) | p_t (none)

Backward: with ``gp_t = dL/dp_t``, ``gp_t = gz_t s_t + c_t alpha gp_{t+1}`` where
``c_t = du_t/dp_t`` (soft: ``1 - v_th s_t``; hard: ``1 - z_t + (v_reset - p_t) s_t``; none: 1; a
detached reset drops the ``s_t`` terms). Everything but that one recurrence is vectorised over
time, so the reverse loop costs a single fused multiply-add per step.

Leaky integration (``leaky_recurrence``): ``y_t = a * y_{t-1} + x_t``.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from network.surrogates import Surrogate

Reset = Literal["soft", "hard", "none"]


def _reduce_like(grad: Tensor, like: Tensor) -> Tensor:
    """Sum ``grad`` [T, B, N] down to the shape of a broadcast parameter (``[N]`` or scalar)."""
    if like.dim() == 0:
        return grad.sum()
    return grad.sum(dim=tuple(range(grad.dim() - like.dim())))


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, u0: Tensor, v_th: float, v_reset: float,
                reset: Reset, detach_reset: bool, surrogate: Surrogate):
        alpha_b = alpha.expand_as(u0)
        P = torch.empty_like(x)
        Z = torch.empty_like(x)
        xs, ps, zs = x.unbind(0), P.unbind(0), Z.unbind(0)
        u = u0.clone()
        for t in range(x.shape[0]):
            torch.addcmul(xs[t], u, alpha_b, out=ps[t])
            torch.gt(ps[t], v_th, out=zs[t])
            if reset == "soft":
                torch.sub(ps[t], zs[t], alpha=v_th, out=u)
            elif reset == "hard":
                u.copy_(ps[t]).masked_fill_(zs[t].bool(), v_reset)
            else:
                u.copy_(ps[t])
        ctx.save_for_backward(P, alpha, u0)
        ctx.config = (v_th, v_reset, reset, detach_reset, surrogate)
        return Z, u, P

    @staticmethod
    def backward(ctx, gZ: Tensor, gU: Tensor, gP: Tensor):
        P, alpha, u0 = ctx.saved_tensors
        v_th, v_reset, reset, detach_reset, surrogate = ctx.config
        s = surrogate.derivative(P - v_th)
        Z = (P > v_th).to(P.dtype)
        if reset == "soft":
            c = torch.ones_like(P) if detach_reset else 1.0 - v_th * s
            U = P - v_th * Z
        elif reset == "hard":
            c = 1.0 - Z if detach_reset else 1.0 - Z + (v_reset - P) * s
            U = torch.where(Z > 0, torch.full_like(P, v_reset), P)
        else:
            c = torch.ones_like(P)
            U = P
        G = gZ * s  # becomes dL/dp_t in place, step by step
        G.add_(gP)
        G[-1].addcmul_(gU, c[-1])
        D = c.mul_(alpha)  # alpha * c_t
        for t in range(P.shape[0] - 2, -1, -1):
            G[t].addcmul_(G[t + 1], D[t])
        g_alpha = None
        if ctx.needs_input_grad[1]:
            U_prev = torch.cat([u0.unsqueeze(0), U[:-1]])
            g_alpha = _reduce_like(G * U_prev, alpha)
        g_u0 = G[0] * alpha if ctx.needs_input_grad[2] else None
        return G, g_alpha, g_u0, None, None, None, None, None


def lif_recurrence(x: Tensor, alpha: Tensor, u0: Tensor, v_th: float, v_reset: float = 0.0,
                   reset: Reset = "soft", detach_reset: bool = False,
                   surrogate: Surrogate | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes ``[T, B, N]``, final membrane ``[B, N]`` and pre-reset membrane ``[T, B, N]``.

    ``alpha`` is a scalar tensor or ``[N]``; ``u0`` the initial membrane ``[B, N]``.
    """
    from network.surrogates import FastSigmoid

    return _LIF.apply(x, alpha, u0, float(v_th), float(v_reset), reset, detach_reset, surrogate or FastSigmoid())


class _Leaky(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, y0: Tensor) -> Tensor:
        Y = torch.empty_like(x)
        a_b = a.expand_as(y0)
        xs, ys = x.unbind(0), Y.unbind(0)
        prev = y0
        for t in range(x.shape[0]):
            torch.addcmul(xs[t], prev, a_b, out=ys[t])
            prev = ys[t]
        ctx.save_for_backward(Y, a, y0)
        return Y

    @staticmethod
    def backward(ctx, gY: Tensor):
        Y, a, y0 = ctx.saved_tensors
        G = gY.clone()
        a_b = a.expand_as(y0)
        for t in range(G.shape[0] - 2, -1, -1):
            G[t].addcmul_(G[t + 1], a_b)
        g_a = None
        if ctx.needs_input_grad[1]:
            Y_prev = torch.cat([y0.unsqueeze(0), Y[:-1]])
            g_a = _reduce_like(G * Y_prev, a)
        g_y0 = G[0] * a_b if ctx.needs_input_grad[2] else None
        return G, g_a, g_y0


def leaky_recurrence(x: Tensor, a: Tensor, y0: Tensor) -> Tensor:
    """``y_t = a * y_{t-1} + x_t`` over ``[T, B, N]`` (``a`` scalar tensor or ``[N]``)."""
    return _Leaky.apply(x, a, y0)
