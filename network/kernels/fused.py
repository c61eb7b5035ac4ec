"""Fused LIF recurrences: a forward loop without an autograd graph and a hand-written
reverse-time backward that saves only the pre-reset membrane.

Both recurrences are time-major (``[T, B, N]``) and take the synaptic current already multiplied
by the weights (the matrix product is done once for all steps, outside).

LIF (``lif_recurrence``)::

    p_t = alpha * u_{t-1} + gain * x_t   (pre-reset membrane)
    z_t = H(p_t - v_th)                  (spike; surrogate derivative s_t in the backward)
    u_t = p_t - v_th z_t                 (soft reset)  | p_t (1 - z_t) + v_reset z_t (hard) | p_t (none)

With ``undecayed_reset`` (the CUBA form of specs/resonators.md, ``U_t = b U_{t-1} + I_t -
theta z_{t-1}``) the soft reset subtracts ``v_th / alpha``, so that the next step's decay leaves
exactly ``v_th`` subtracted; then ``dp_t/dalpha = p_{t-1}`` and the final state adds
``v_th / alpha^2 z_{T-1}`` to it.

Backward, with ``c_t = du_t/dp_t`` (soft: ``1 - v_th s_t``; hard: ``1 - z_t + (v_reset - p_t) s_t``;
none: 1; a detached reset drops the ``s_t`` terms) and ``dL/du_{T-1}`` the final state's gradient::

    gp_t = dL/dz_t s_t + dL/dp_t + c_t alpha gp_{t+1}    (gp_{T-1} gets c_{T-1} dL/du_{T-1})
    dL/dx_t = gain gp_t,   dL/du0 = alpha gp_0

Both loops walk time in chunks of about 1 MiB: everything that does not depend on the previous
step (the input gain, the surrogate slopes, the reset factors, the parameter gradients) is
computed for a whole chunk at once while it is in cache, and the sequential part is one fused
multiply-add per step backwards and three operations forwards. Nothing but the spikes, the membrane and the
input gradient is materialised at full ``[T, B, N]`` size.

Leaky integration (``leaky_recurrence``): ``y_t = a * y_{t-1} + x_t``.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from network.surrogates import Surrogate

Reset = Literal["soft", "hard", "none"]


def _reduce_like(grad: Tensor, like: Tensor) -> Tensor:
    """Sum ``grad`` ``[B, N]`` down to the shape of a broadcast parameter (``[N]`` or scalar)."""
    if like.dim() == 0:
        return grad.sum()
    return grad.sum(dim=tuple(range(grad.dim() - like.dim())))


def _reset(p: Tensor, z: Tensor, v_th: float | Tensor, v_reset: float, reset: Reset, out: Tensor) -> Tensor:
    """``u_t`` from ``p_t`` and ``z_t`` into ``out``; a soft reset subtracts ``v_th`` (a float, or a
    tensor of reset amounts for the undecayed reset)."""
    if reset == "soft":
        if isinstance(v_th, Tensor):
            return torch.addcmul(p, z, v_th, value=-1.0, out=out)
        return torch.sub(p, z, alpha=v_th, out=out)
    out.copy_(p)
    if reset == "hard":
        out.masked_fill_(z.bool(), v_reset)
    return out


def _chunk(x: Tensor) -> int:
    """Time steps per chunk: about 1 MiB of one ``[T, B, N]`` tensor, so a chunk stays in cache."""
    per_step = max(1, x[0].numel() * x.element_size())
    return max(1, min(x.shape[0], (1 << 20) // per_step))


def _reset_factor(p: Tensor, s: Tensor, v_th: float, v_reset: float, reset: Reset, detach: bool,
                  amount: float | Tensor) -> Tensor:
    """``c_t = du_t/dp_t`` for a chunk of pre-reset membranes ``p`` and surrogate slopes ``s``
    (``amount``: what a soft reset subtracts)."""
    if reset == "soft":
        return torch.ones_like(p) if detach else 1.0 - amount * s
    if reset == "hard":
        keep = (p <= v_th).to(p.dtype)
        return keep if detach else keep + (v_reset - p) * s
    return torch.ones_like(p)


def _after_reset(p: Tensor, v_th: float, v_reset: float, reset: Reset) -> Tensor:
    """``u_t`` from ``p_t`` for a chunk (vectorised)."""
    z = p > v_th
    if reset == "soft":
        return p - v_th * z.to(p.dtype)
    if reset == "hard":
        return p.masked_fill(z, v_reset)
    return p


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, gain: Tensor, u0: Tensor, v_th: float, v_reset: float,
                reset: Reset, detach_reset: bool, surrogate: Surrogate, undecayed_reset: bool):
        alpha_b = alpha.expand_as(u0)
        undecayed = undecayed_reset and reset == "soft"
        amount = v_th / alpha_b if undecayed else v_th
        P = torch.empty_like(x)
        Z = torch.empty_like(x)
        ps, zs = P.unbind(0), Z.unbind(0)
        u = u0.clone()
        size = _chunk(x)
        for t0 in range(0, x.shape[0], size):
            torch.mul(x[t0:t0 + size], gain, out=P[t0:t0 + size])  # gain * x for the whole chunk
            for t in range(t0, min(t0 + size, x.shape[0])):
                ps[t].addcmul_(u, alpha_b)
                torch.gt(ps[t], v_th, out=zs[t])
                _reset(ps[t], zs[t], amount, v_reset, reset, u)
        ctx.save_for_backward(x, P, alpha, gain, u0)
        ctx.config = (v_th, v_reset, reset, detach_reset, surrogate, undecayed)
        ctx.set_materialize_grads(False)  # unused outputs get no zero [T, B, N] gradient
        return Z, u, P

    @staticmethod
    def backward(ctx, gZ: Tensor | None, gU: Tensor | None, gP: Tensor | None):
        x, P, alpha, gain, u0 = ctx.saved_tensors
        v_th, v_reset, reset, detach_reset, surrogate, undecayed = ctx.config
        need_alpha, need_gain = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        alpha_b = alpha.expand_as(u0)
        amount = v_th / alpha_b if undecayed else v_th
        GX = torch.empty_like(P)
        g_alpha = torch.zeros_like(u0) if need_alpha else None
        g_gain = torch.zeros_like(u0) if need_gain else None
        later = None  # dL/dp of the step after the current one (crosses chunk borders)
        T, size = P.shape[0], _chunk(P)
        for t1 in range(T, 0, -size):
            t0 = max(0, t1 - size)
            p = P[t0:t1]
            s = surrogate.derivative(p - v_th)
            # A_t = dL/dz_t s_t + dL/dp_t (direct); gp_t = A_t + c_t alpha gp_{t+1}: one fused op per step
            gp = torch.zeros_like(p) if gZ is None else gZ[t0:t1] * s
            if gP is not None:
                gp += gP[t0:t1]
            c = _reset_factor(p, s, v_th, v_reset, reset, detach_reset, amount)
            gps, cs = gp.unbind(0), c.unbind(0)
            last = t1 - t0 - 1
            if later is None:  # the final step: its state gradient enters through c_{T-1}
                if gU is not None:
                    gps[last].addcmul_(cs[last], gU)
            else:
                gps[last].addcmul_(cs[last] * alpha_b, later)
            c.mul_(alpha)
            for i in range(last - 1, -1, -1):
                gps[i].addcmul_(cs[i], gps[i + 1])
            later = gps[0]
            torch.mul(gp, gain, out=GX[t0:t1])
            if need_gain:
                g_gain += (gp * x[t0:t1]).sum(0)
            if need_alpha:  # dp_t/dalpha = u_{t-1} (undecayed reset: p_{t-1}, see the module docstring)
                before = P[t0 - 1:t1 - 1] if t0 > 0 else P[:t1 - 1]
                previous = before if undecayed else _after_reset(before, v_th, v_reset, reset)
                if t0 == 0:
                    previous = torch.cat([u0.unsqueeze(0), previous])
                g_alpha += (gp * previous).sum(0)
        if need_alpha and undecayed and gU is not None:  # u_{T-1} = p_{T-1} - v_th / alpha z_{T-1}
            g_alpha += gU * (P[-1] > v_th).to(P.dtype) * v_th / alpha_b ** 2
        return (GX, _reduce_like(g_alpha, alpha) if need_alpha else None,
                _reduce_like(g_gain, gain) if need_gain else None,
                later * alpha_b if ctx.needs_input_grad[3] else None, None, None, None, None, None, None)


def lif_recurrence(x: Tensor, alpha: Tensor, u0: Tensor, v_th: float, v_reset: float = 0.0,
                   reset: Reset = "soft", detach_reset: bool = False, surrogate: Surrogate | None = None,
                   gain: Tensor | None = None, undecayed_reset: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes ``[T, B, N]``, final membrane ``[B, N]`` and pre-reset membrane ``[T, B, N]``.

    ``alpha`` and ``gain`` are scalar tensors or ``[N]`` (``gain`` defaults to 1); ``u0`` is the
    initial membrane ``[B, N]``; ``undecayed_reset``: a soft reset takes exactly ``v_th`` off the
    next step's membrane (CUBA form).
    """
    from network.surrogates import FastSigmoid

    if gain is None:
        gain = torch.ones((), dtype=x.dtype, device=x.device)
    return _LIF.apply(x, alpha, gain, u0, float(v_th), float(v_reset), reset, detach_reset,
                      surrogate or FastSigmoid(), undecayed_reset)


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
