"""Leaky filters stepped in time: the DEN kernel's two-stage twin and a single-stage leaky kernel.

Both are computed with the fused :func:`~network.kernels.fused.leaky_recurrence` (or, with
spikes, :func:`~network.kernels.fused.lif_recurrence`): a forward loop over time without an
autograd graph and a hand-written reverse-time backward.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from network.kernels.base import Kernel, KernelTrace
from network.kernels.den import check_distinct_taus, den_v0
from network.kernels.fused import leaky_recurrence, lif_recurrence
from network.surrogates import Surrogate
from settings import PositiveFloat, create
from settings.registries import KERNELS, SURROGATES


class SequentialState(NamedTuple):
    i: Tensor  # synaptic current [B, N]
    u: Tensor  # membrane before scaling [B, N]


def _scalar(value: float, like: Tensor) -> Tensor:
    return torch.full((), value, dtype=like.dtype, device=like.device)


@KERNELS.register
class SequentialDENKernel(Kernel):
    """The DEN kernel as two leaky filters stepped in time: synaptic ``I_t = b_s I_{t-1} + x_t``,
    then membrane ``U_t = b_m U_{t-1} + I_t`` (``b = exp(-dt/tau)``); output ``V_t = c U_t``.

    Impulse response ``h[t] = c (b_m^(t+1) - b_s^(t+1)) / (b_m - b_s)`` (symmetric in the two
    taus). ``scaled: true`` sets ``c = V0 (b_m - b_s)``, so ``h[t] = K((t + 1) dt)``: the
    DENKernel's response one step later (V0 normalises K's peak to 1); ``false`` keeps ``c = 1``.

    Args:
        tau_m: membrane time constant (ms).
        tau_s: synaptic time constant (ms), different from tau_m.
        scaled: scale the output so that it matches the DEN kernel (see above).
        v_0: the DEN peak normalisation; ``null`` computes it from the taus.
        dt: time step (ms).
    """

    spiking = False

    def __init__(self, size: int, tau_m: PositiveFloat = 15.0, tau_s: PositiveFloat = 3.75, scaled: bool = True,
                 v_0: float | None = None, dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.tau_m, self.tau_s, self.dt, self.scaled = size, tau_m, tau_s, dt, scaled
        self.v_0 = den_v0(tau_m, tau_s) if v_0 is None else v_0
        self.b_m, self.b_s = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
        self.scale = self.v_0 * (self.b_m - self.b_s) if scaled else 1.0

    check_params = staticmethod(check_distinct_taus)

    def response(self, steps: Tensor) -> Tensor:
        """``h[k] = c (b_m^(k+1) - b_s^(k+1)) / (b_m - b_s)`` (closed form)."""
        return self.scale * (self.b_m ** (steps + 1) - self.b_s ** (steps + 1)) / (self.b_m - self.b_s)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> SequentialState:
        zeros = torch.zeros(batch, self.size, dtype=dtype, device=device)
        return SequentialState(zeros, zeros)

    def step_trace(self, x: Tensor, state: SequentialState) -> tuple[Tensor, Tensor, SequentialState]:
        i = self.b_s * state.i + x
        u = self.b_m * state.u + i
        v = u * self.scale if self.scaled else u
        return v, v, SequentialState(i, u)

    def trace(self, x: Tensor, state: SequentialState | None = None) -> KernelTrace:
        """``x``: input current ``[T, B, N]``; state: ``(I, U)`` ``[B, N]`` after the last step."""
        if state is None:
            zeros = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
            state = SequentialState(zeros, zeros)
        current = leaky_recurrence(x, _scalar(self.b_s, x), state.i)
        membrane = leaky_recurrence(current, _scalar(self.b_m, x), state.u)
        v = membrane * self.scale if self.scaled else membrane
        return KernelTrace(v, SequentialState(current[-1], membrane[-1]), v)


@KERNELS.register
class LeakyKernel(Kernel):
    """One leaky filter ``U_t = b U_{t-1} + x_t`` (``b = exp(-dt/tau)``, impulse response ``b^t``).

    ``spike: true`` also emits ``z_t = H(U_t - v_th)`` (the output is then the spikes, the membrane
    is recorded); ``reset: true`` sets U to ``v_reset`` after each spike. Without a reset the
    membrane stays linear, so PSP learning rules (SingleSpikeLR, IntegrateLR) can train it.

    Args:
        tau: time constant (ms).
        spike: emit spikes.
        reset: hard reset after a spike (needs ``spike``).
        v_th: firing threshold.
        v_reset: reset potential.
        surrogate: pseudo-derivative of the spike (gradients through spikes).
        dt: time step (ms).
    """

    def __init__(self, size: int, tau: PositiveFloat = 15.0, spike: bool = False, reset: bool = False,
                 v_th: float = 1.0, v_reset: float = 0.0, surrogate: Surrogate = "FastSigmoid",
                 dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.tau, self.dt, self.reset = size, tau, dt, reset
        self.spiking, self.v_th, self.v_reset = spike, v_th, v_reset
        self.surrogate = create(surrogate, SURROGATES)
        self.b = math.exp(-dt / tau)

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        if params["reset"] and not params["spike"]:
            return [("reset", "needs spike: true (a reset follows a spike)")]
        return []

    def response(self, steps: Tensor) -> Tensor:
        """``b^k``; only without a reset."""
        if self.reset:
            raise TypeError("a LeakyKernel with reset is not linear: it has no impulse response")
        return self.b ** steps

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        return torch.zeros(batch, self.size, dtype=dtype, device=device)

    def step_trace(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u = self.b * state + x
        if not self.spiking:
            return u, u, u
        z = self.surrogate.spike(u - self.v_th)
        after = u * (1 - z) + self.v_reset * z if self.reset else u
        return z, u, after

    def trace(self, x: Tensor, state: Tensor | None = None) -> KernelTrace:
        """``x``: input current ``[T, B, N]``; state: U ``[B, N]`` after the last step (after a reset)."""
        u0 = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device) if state is None else state
        b = _scalar(self.b, x)
        if not self.spiking:
            u = leaky_recurrence(x, b, u0)
            return KernelTrace(u, u[-1], u)
        z, u_last, membrane = lif_recurrence(x, b, u0, self.v_th, self.v_reset, "hard" if self.reset else "none",
                                             surrogate=self.surrogate, gain=_scalar(1.0, x))
        return KernelTrace(z, u_last, membrane)
