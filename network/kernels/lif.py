"""Leaky integrate-and-fire (current-based and CUBA) and the leaky integrator (LI)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from network.kernels.base import Kernel, KernelTrace
from network.kernels.fused import leaky_recurrence, lif_recurrence
from network.kernels.params import NeuronValue, add_neuron_constant
from network.surrogates import Surrogate
from settings import PositiveFloat, create
from settings.registries import KERNELS, SURROGATES


class LIFState(NamedTuple):
    u: Tensor  # membrane [B, N] (after reset)
    i: Tensor | None  # synaptic current [B, N] (CUBA only)


@dataclass(frozen=True)
class LIFParameters:
    alpha: Tensor  # membrane decay exp(-dt/tau_m), scalar or [N]
    beta: Tensor | None  # synaptic decay exp(-dt/tau_syn) (CUBA) or None
    v_th: float
    v_reset: float
    reset: str
    detach_reset: bool
    surrogate: Surrogate


def lif_step(x: Tensor, state: LIFState, p: LIFParameters) -> tuple[Tensor, LIFState]:
    """One step of the LIF neuron (plain autograd; the reference for the fused recurrence).

    current-based: ``u = alpha u + (1 - alpha) x``; CUBA: ``i = beta i + x``, ``u = alpha u + i``;
    then ``z = H(u - v_th)`` and the reset (soft: ``u - v_th z``, CUBA ``u - v_th / alpha z`` so
    that the next step is ``U_t = alpha U_{t-1} + I_t - v_th z_{t-1}`` as in specs/resonators.md;
    hard: ``v_reset`` where z; none). Returns spikes ``[B, N]`` and the new state.
    """
    if p.beta is None:
        i = None
        drive = (1 - p.alpha) * x
    else:
        i = p.beta * state.i + x
        drive = i
    u = p.alpha * state.u + drive
    z = p.surrogate.spike(u - p.v_th)
    r = z.detach() if p.detach_reset else z
    if p.reset == "soft" and p.beta is not None:  # CUBA: U_t = alpha U_{t-1} + I_t - v_th z_{t-1}
        u = u - p.v_th / p.alpha * r
    elif p.reset == "soft":
        u = u - p.v_th * r
    elif p.reset == "hard":
        u = u * (1 - r) + p.v_reset * r
    return z, LIFState(u, i)


def _decay(tau: Tensor, dt: float) -> Tensor:
    return torch.exp(-dt / tau.abs())


@KERNELS.register
class LIFKernel(Kernel):
    """Leaky integrate-and-fire neurons trained with surrogate gradients.

    Args:
        tau_m: membrane time constant (ms): a number, or an initializer drawn per neuron
            (``{type: Normal, mean: 20, std: 5}``; the decay uses ``|tau|``).
        tau_syn: synaptic time constant (ms; a number or an initializer); set it for the CUBA form with a synaptic current,
            ``I_t = beta I_{t-1} + x_t``, ``U_t = alpha U_{t-1} + I_t - v_th z_{t-1}`` (soft reset).
        v_th: firing threshold.
        v_reset: reset potential (hard reset).
        reset: ``soft`` (subtract v_th), ``hard`` (set to v_reset) or ``none``.
        detach_reset: stop gradients through the reset.
        surrogate: pseudo-derivative of the spike.
        learn_tau: train one tau_m (and tau_syn) per neuron (the same as ``learn: [tau_m, tau_syn]``).
        learn: the per-neuron constants to train (``[tau_m]``, ``[tau_syn]`` or both).
        fused: use the fused forward/backward (``false``: step-by-step autograd, for reference).
        dt: time step (ms).
    """

    def __init__(self, size: int, tau_m: NeuronValue = 20.0, tau_syn: NeuronValue | None = None,
                 v_th: float = 1.0, v_reset: float = 0.0, reset: Literal["soft", "hard", "none"] = "soft",
                 detach_reset: bool = False, surrogate: Surrogate = "FastSigmoid", learn_tau: bool = False,
                 learn: list[Literal["tau_m", "tau_syn"]] = (), fused: bool = True, dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.dt, self.v_th, self.v_reset = size, dt, v_th, v_reset
        self.reset, self.detach_reset, self.fused = reset, detach_reset, fused
        self.surrogate = create(surrogate, SURROGATES)
        learned = {"tau_m", "tau_syn"} if learn_tau else set(learn)
        add_neuron_constant(self, "tau_m", tau_m, size, "tau_m" in learned)
        add_neuron_constant(self, "tau_syn", tau_syn, size, "tau_syn" in learned)

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        if "tau_syn" in params["learn"] and params["tau_syn"] is None:
            return [("learn", "lists tau_syn, but tau_syn is not set (the current-based LIF has none)")]
        return []

    def parameters_now(self) -> LIFParameters:
        beta = None if self.tau_syn is None else _decay(self.tau_syn, self.dt)
        return LIFParameters(_decay(self.tau_m, self.dt), beta, self.v_th, self.v_reset, self.reset,
                             self.detach_reset, self.surrogate)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> LIFState:
        zeros = torch.zeros(batch, self.size, dtype=dtype, device=device)
        return LIFState(zeros, None if self.tau_syn is None else zeros)

    def step_trace(self, x: Tensor, state: LIFState) -> tuple[Tensor, Tensor, LIFState]:
        p = self.parameters_now()
        membrane = p.alpha * state.u + ((1 - p.alpha) * x if p.beta is None else p.beta * state.i + x)
        z, state = lif_step(x, state, p)
        return z, membrane, state

    def trace(self, x: Tensor, state: LIFState | None = None) -> KernelTrace:
        if not self.fused:
            return self.trace_steps(x, state)
        state = state if state is not None else self.initial_state(x.shape[1], x.dtype, x.device)
        p = self.parameters_now()
        if p.beta is None:
            drive, i_last, gain = x, None, 1 - p.alpha
        else:
            drive = leaky_recurrence(x, p.beta, state.i)
            i_last, gain = drive[-1], None
        z, u, membrane = lif_recurrence(drive, p.alpha, state.u, p.v_th, p.v_reset, p.reset,
                                        p.detach_reset, p.surrogate, gain, undecayed_reset=p.beta is not None)
        return KernelTrace(z, LIFState(u, i_last), membrane)


@KERNELS.register
class LIKernel(Kernel):
    """Leaky integrator (no spikes): ``o_t = alpha o_{t-1} + (1 - alpha) x_t``, alpha = exp(-dt/tau).

    Args:
        tau: time constant (ms): a number, or an initializer drawn per neuron.
        learn_tau: train one tau per neuron.
        dt: time step (ms).
    """

    spiking = False

    def __init__(self, size: int, tau: NeuronValue = 20.0, learn_tau: bool = False, dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.dt = size, dt
        add_neuron_constant(self, "tau", tau, size, learn_tau)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        return torch.zeros(batch, self.size, dtype=dtype, device=device)

    def step_trace(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        alpha = _decay(self.tau, self.dt)
        v = alpha * state + (1 - alpha) * x
        return v, v, v

    def trace(self, x: Tensor, state: Tensor | None = None) -> KernelTrace:
        alpha = _decay(self.tau, self.dt)
        y0 = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device) if state is None else state
        v = leaky_recurrence((1 - alpha) * x, alpha, y0)
        return KernelTrace(v, v[-1], v)
