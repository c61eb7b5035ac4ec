"""The tempotron's double-exponential PSP kernel (DEN), computed from two exponential traces."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from network.kernels.base import Kernel, KernelTrace
from network.kernels.filters import ExponentialTraces
from settings import PositiveFloat
from settings.registries import KERNELS


def den_peak_time(tau_m: float, tau_s: float) -> float:
    """Time of the kernel's maximum: ``tau_m tau_s / (tau_m - tau_s) * ln(tau_m / tau_s)``."""
    return tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)


def den_v0(tau_m: float, tau_s: float) -> float:
    """The normalisation that makes the kernel's peak 1 (2.1165 for 15 / 3.75)."""
    t = den_peak_time(tau_m, tau_s)
    return 1.0 / (math.exp(-t / tau_m) - math.exp(-t / tau_s))


def check_distinct_taus(params: dict) -> list[tuple[str, str]]:
    if params["tau_m"] == params["tau_s"]:
        return [("tau_s", f"must differ from tau_m ({params['tau_m']}) for a double-exponential kernel")]
    return []


@KERNELS.register
class DENKernel(Kernel):
    """``K(t) = V0 (exp(-t/tau_m) - exp(-t/tau_s))`` for t >= 0; ``V(t) = sum_i w_i sum_f K(t - t_i^f)``.

    Linear and reset-free, so the membrane is the input current convolved with K sampled at
    ``t = k dt`` (k = 0, 1, ...; K(0) = 0): ``V[t] = sum_{s <= t} I[s] K((t - s) dt)``, computed
    exactly (float64) as ``V0 (A_m - A_s)``, the difference of two exponential traces of the
    current, each a rescaled cumulative sum (no loop over time, no FFT). The output is the
    membrane (``spiking = False``); the decision is taken by a readout (max over time).

    Args:
        tau_m: membrane time constant (ms).
        tau_s: synaptic time constant (ms), different from tau_m.
        v_0: peak normalisation; ``null`` computes it from the taus so the peak is 1.
        dt: time step (ms).
    """

    spiking = False

    def __init__(self, size: int, tau_m: PositiveFloat = 15.0, tau_s: PositiveFloat = 3.75,
                 v_0: float | None = None, dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.tau_m, self.tau_s, self.dt = size, tau_m, tau_s, dt
        self.v_0 = den_v0(tau_m, tau_s) if v_0 is None else v_0
        self._traces = ExponentialTraces((tau_m, tau_s), dt, scales=(self.v_0, -self.v_0))

    check_params = staticmethod(check_distinct_taus)

    def response(self, steps: Tensor) -> Tensor:
        """``K(k dt)``."""
        t = steps * self.dt
        return self.v_0 * (torch.exp(-t / self.tau_m) - torch.exp(-t / self.tau_s))

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """The two scaled traces ``[2, B, N]`` (float64, as :meth:`trace` keeps them)."""
        return torch.zeros(2, batch, self.size, dtype=torch.float64, device=device)

    def step_trace(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``a_k <- b_k a_k + c_k x`` for the two traces (``c = V0, -V0``); ``V = a_m + a_s``."""
        decay = torch.exp(-self._traces.rates.to(state.device)).reshape(2, 1, 1)
        scales = self._traces.scales.to(state.device).reshape(2, 1, 1)
        state = decay * state + scales * x.to(torch.float64)
        v = state.sum(dim=0).to(x.dtype)
        return v, v, state

    def trace(self, x: Tensor, state: Tensor | None = None) -> KernelTrace:
        """``x``: input current ``[T, B, N]``; state: ``[2, B, N]`` (float64), the two scaled
        exponential traces ``V0 A_m`` and ``-V0 A_s`` after the last step, with
        ``A_tau[t] = sum_{s <= t} I[s] exp(-(t - s) dt / tau)``.

        ``V = V0 A_m - V0 A_s``: both traces see ``I[t]`` with weight 1 at lag 0, so ``K(0) = 0``.
        """
        traces = self._traces(x, state)  # [2, T, B, N], float64
        v = traces.sum(dim=0).to(x.dtype)
        return KernelTrace(v, traces[:, -1], v)
