"""Resonate-and-fire neurons (RF, BRF, BHRF) and the adaptive LIF (ALIF), after
specs/resonators.md (Higuchi et al. 2024; Izhikevich 2001; Yin et al. 2021)."""
from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from network.init import Normal, Uniform
from network.kernels.base import Kernel, KernelTrace
from network.kernels.cells import Cell, fused_available, run_cell
from network.kernels.params import NeuronValue, add_neuron_constant
from network.surrogates import Surrogate
from settings import PositiveFloat, UnitInterval, create
from settings.registries import KERNELS, SURROGATES


def divergence_boundary(omega: Tensor, dt: float) -> Tensor:
    """``p(omega) = (-1 + sqrt(1 - (dt omega)^2)) / dt``: the largest damping for which the Euler
    step of ``du/dt = (b + i omega) u`` does not grow (``|1 + dt (b + i omega)| <= 1``); defined
    for ``|omega| <= 1 / dt`` (larger values are clamped to the edge)."""
    scaled = (dt * omega).clamp(-1.0, 1.0)
    return (-1.0 + torch.sqrt((1.0 - scaled * scaled).clamp_min(1e-12))) / dt


class ResonatorState(NamedTuple):
    x: Tensor  # RF/BRF: Re(u); BHRF: the position v   [B, N]
    y: Tensor  # RF/BRF: Im(u); BHRF: the velocity u   [B, N]
    q: Tensor  # refractory trace (zeros for RF)        [B, N]


class ALIFState(NamedTuple):
    u: Tensor  # membrane after reset [B, N]
    a: Tensor  # adaptation trace [B, N]
    z: Tensor  # spikes of the last step [B, N]


def _spike(surrogate: Surrogate, fgi: bool, v: Tensor) -> Tensor:
    return surrogate.spike_fgi(v) if fgi else surrogate.spike(v)


class _CellKernel(Kernel):
    """Shared machinery of the kernels with a fused cell: the step-by-step path (``fused:
    false``, ``fgi``, tensors the compiled loops do not take) and the fused path, fed forward
    (:meth:`trace`) or inside a ``Recurrent`` layer (:meth:`fused_recurrent`)."""

    fused: bool
    surrogate: Surrogate

    def cell(self) -> Cell:
        raise NotImplementedError

    def cell_params(self) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def cell_state(self, state: Any) -> tuple[Tensor, ...]:
        return tuple(state)

    def from_cell_state(self, final: tuple[Tensor, ...], z_last: Tensor) -> Any:
        return ResonatorState(*final)

    def _use_fused(self, x: Tensor) -> bool:
        return self.fused and fused_available(x, *self.cell_params())

    def fused_recurrent(self, drive: Tensor, weight: Tensor | None, z0: Tensor, state: Any):
        if not self._use_fused(drive):
            return None
        Z, membrane, z_last, final = run_cell(self.cell(), drive, weight, z0, self.cell_params(),
                                              self.cell_state(state))
        return Z, membrane, z_last, self.from_cell_state(final, z_last)

    def trace(self, x: Tensor, state: Any = None) -> KernelTrace:
        if state is None:
            state = self.initial_state(x.shape[1], x.dtype, x.device)
        z0 = state.z if isinstance(state, ALIFState) else torch.zeros_like(x[0])
        fused = self.fused_recurrent(x, None, z0, state)
        if fused is None:
            return self.trace_steps(x, state)
        Z, membrane, _, state = fused
        return KernelTrace(Z, state, membrane)


class _ResonatorKernel(_CellKernel):
    def __init__(self, size: int, omega: NeuronValue | float | None, b_offset: NeuronValue | None, learn,
                 theta: float, delta: float, surrogate: Surrogate, fgi: bool, fused: bool,
                 omega_default: tuple[float, float], b_offset_default: tuple[float, float]):
        super().__init__()
        self.size, self.theta, self.delta, self.fgi, self.fused = size, float(theta), float(delta), fgi, fused
        self.surrogate = create(surrogate, SURROGATES)
        add_neuron_constant(self, "omega", Uniform(*omega_default) if omega is None else omega, size, "omega" in learn)
        add_neuron_constant(self, "b_offset", Uniform(*b_offset_default) if b_offset is None else b_offset, size,
                            "b_offset" in learn)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> ResonatorState:
        zeros = torch.zeros(batch, self.size, dtype=dtype, device=device)
        return ResonatorState(zeros, zeros, zeros)


_LEARN_RESONATOR = ("omega", "b_offset")


@KERNELS.register
class RFKernel(_ResonatorKernel):
    """Resonate-and-fire neurons (Izhikevich 2001): ``du/dt = (b + i omega) u + I`` with
    ``b = -|b_offset|``, one Euler step of ``delta`` per time step (real form, both from the old
    state): ``x_t = x + delta (b x - omega y + I_t)``, ``y_t = y + delta (omega x + b y)``; spike
    ``z_t = H(x_t - theta)``, no reset. The membrane trace is ``x``.

    Args:
        omega: angular frequency per neuron (a number or an initializer; default U(15, 50)).
        b_offset: damping magnitude ``|b|`` (default U(0.1, 1)).
        learn: the per-neuron constants to train (default both).
        theta: firing threshold.
        delta: Euler step of the equations in model time (0.01 in the papers; independent of
            the simulation's ``dt``, which counts samples).
        decay: ``exponential`` (the damping multiplies the state, ``b x delta``) or ``linear``
            (the reproduction study's variant: the damping is added as a constant, ``b delta``).
        surrogate: pseudo-derivative of the spike (default DoubleGaussian).
        fgi: step-by-step path only: forward gradient injection (``h = v sg(g(v))``, ``z = h -
            sg(h) + sg(H(v))``) instead of a custom backward; the gradient is the same.
        fused: run whole sequences in the compiled cell (``false``: step-by-step autograd).
    """

    balanced = False

    def __init__(self, size: int, omega: NeuronValue | None = None, b_offset: NeuronValue | None = None,
                 learn: list[Literal["omega", "b_offset"]] = _LEARN_RESONATOR, theta: float = 1.0,
                 delta: PositiveFloat = 0.01, decay: Literal["exponential", "linear"] = "exponential",
                 surrogate: Surrogate = "DoubleGaussian", fgi: bool = False, fused: bool = True):
        super().__init__(size, omega, b_offset, learn, theta, delta, surrogate, fgi, fused, (15.0, 50.0), (0.1, 1.0))
        self.decay, self.gamma = decay, 0.9

    def damping(self, q: Tensor | None = None) -> Tensor:
        """``b``: ``-|b_offset|`` (RF); BRF: ``p(|omega|) - |b_offset| - q``."""
        return -self.b_offset.abs()

    def cell(self) -> Cell:
        return Cell("brf", 3, (self.gamma, self.theta, self.delta, self.balanced, self.decay == "linear"),
                    self.surrogate, "first")

    def cell_params(self) -> tuple[Tensor, ...]:
        p = divergence_boundary(self.omega.abs(), self.delta) if self.balanced else torch.zeros_like(self.omega)
        return self.omega, p, self.b_offset.abs()

    def step_trace(self, current: Tensor, state: ResonatorState) -> tuple[Tensor, Tensor, ResonatorState]:
        x, y, q = state
        b, omega, d = self.damping(q), self.omega, self.delta
        if self.decay == "linear":
            x_new = x + d * (b - omega * y + current)
            y_new = y + d * (omega * x + b)
        else:
            x_new = x + d * (b * x - omega * y + current)
            y_new = y + d * (omega * x + b * y)
        if self.balanced:
            z = _spike(self.surrogate, self.fgi, x_new - self.theta - q)
            q_new = self.gamma * q + z
        else:
            z = _spike(self.surrogate, self.fgi, x_new - self.theta)
            q_new = q
        return z, x_new, ResonatorState(x_new, y_new, q_new)


@KERNELS.register
class BRFKernel(RFKernel):
    """Balanced resonate-and-fire neurons (Higuchi et al. 2024): the RF step with the damping
    ``b_t = p(|omega|) - |b_offset| - q_{t-1}`` (``p`` the divergence boundary, so every neuron
    starts stable whatever its frequency; ``q`` the smooth reset), the refractory threshold
    ``theta_t = theta + q_{t-1}``, spike ``z_t = H(x_t - theta_t)`` and ``q_t = gamma q_{t-1} + z_t``.

    Args:
        omega: angular frequency per neuron (default U(15, 50); must stay below ``1 / delta``).
        b_offset: the damping offset ``b'`` (default U(0.1, 1)).
        learn: the per-neuron constants to train (default both).
        theta: the resting threshold ``theta_c``.
        gamma: decay of the refractory trace ``q``.
        delta: Euler step of the equations in model time (0.01).
        decay: ``exponential`` or ``linear`` (the damping added as a constant), see RFKernel.
        surrogate: pseudo-derivative of the spike (default DoubleGaussian).
        fgi: forward gradient injection on the step-by-step path.
        fused: run whole sequences in the compiled cell.
    """

    balanced = True

    def __init__(self, size: int, omega: NeuronValue | None = None, b_offset: NeuronValue | None = None,
                 learn: list[Literal["omega", "b_offset"]] = _LEARN_RESONATOR, theta: float = 1.0,
                 gamma: UnitInterval = 0.9, delta: PositiveFloat = 0.01,
                 decay: Literal["exponential", "linear"] = "exponential", surrogate: Surrogate = "DoubleGaussian",
                 fgi: bool = False, fused: bool = True):
        super().__init__(size, omega, b_offset, learn, theta, delta, decay, surrogate, fgi, fused)
        self.gamma = float(gamma)

    def damping(self, q: Tensor | None = None) -> Tensor:
        return divergence_boundary(self.omega.abs(), self.delta) - self.b_offset.abs() - q


@KERNELS.register
class BHRFKernel(_ResonatorKernel):
    """Balanced harmonic resonate-and-fire neurons (Higuchi et al. 2024): a damped harmonic
    oscillator stepped from the old state, ``v_t = v + delta u``, ``u_t = u + delta (I_t - 2 b u -
    omega^2 v)`` with ``b = omega^2 delta / 2 + |b_offset| + q`` (the positive damping of the
    reference code; the paper's Algorithm 2 prints the opposite sign), spike ``z = H(u_t - theta -
    q)``, ``q <- gamma q + z``. The membrane trace is ``u``.

    Args:
        omega: angular frequency per neuron (default U(5, 10)).
        b_offset: the damping offset (default U(0.1, 1)).
        learn: the per-neuron constants to train (default both).
        theta: the resting threshold.
        gamma: decay of the refractory trace.
        delta: Euler step of the equations in model time (0.01).
        surrogate: pseudo-derivative of the spike (default DoubleGaussian).
        fgi: forward gradient injection on the step-by-step path.
        fused: run whole sequences in the compiled cell.
    """

    def __init__(self, size: int, omega: NeuronValue | None = None, b_offset: NeuronValue | None = None,
                 learn: list[Literal["omega", "b_offset"]] = _LEARN_RESONATOR, theta: float = 1.0,
                 gamma: UnitInterval = 0.9, delta: PositiveFloat = 0.01, surrogate: Surrogate = "DoubleGaussian",
                 fgi: bool = False, fused: bool = True):
        super().__init__(size, omega, b_offset, learn, theta, delta, surrogate, fgi, fused, (5.0, 10.0), (0.1, 1.0))
        self.gamma = float(gamma)

    def cell(self) -> Cell:
        return Cell("bhrf", 3, (self.gamma, self.theta, self.delta), self.surrogate, "second")

    def cell_params(self) -> tuple[Tensor, ...]:
        return self.omega * self.omega, self.b_offset.abs()

    def step_trace(self, current: Tensor, state: ResonatorState) -> tuple[Tensor, Tensor, ResonatorState]:
        v, u, q = state
        omega_sq, d = self.omega * self.omega, self.delta
        b = omega_sq * d / 2 + self.b_offset.abs() + q
        u_new = u + d * (current - 2 * b * u - omega_sq * v)
        z = _spike(self.surrogate, self.fgi, u_new - self.theta - q)
        return z, u_new, ResonatorState(v + d * u, u_new, self.gamma * q + z)


def decay_factor(tau: Tensor, dt: float, decay: str) -> Tensor:
    """``exp(-dt/|tau|)`` (``exponential``) or ``clamp(1 - dt/|tau|, 0, 1)`` (``linear``)."""
    if decay == "linear":
        return (1.0 - dt / tau.abs()).clamp(0.0, 1.0)
    return torch.exp(-dt / tau.abs())


@KERNELS.register
class ALIFKernel(_CellKernel):
    """Adaptive leaky integrate-and-fire neurons (Yin, Corradi, Bohté 2021):
    ``a_t = rho a_{t-1} + (1 - rho) z_{t-1}``, ``theta_t = b0 + beta a_t``, ``u_t = alpha u_{t-1} +
    (1 - alpha) I_t``, ``z_t = H(u_t - theta_t)``, soft reset ``u_t -= z_t theta_t``, with
    ``alpha = exp(-dt/|tau_m|)`` and ``rho = exp(-dt/|tau_adp|)``. The membrane trace is the
    pre-reset ``u_t``.

    Args:
        tau_m: membrane time constant (a number or an initializer; default N(20, 5)).
        tau_adp: adaptation time constant (default N(150, 10)).
        b0: the resting threshold.
        beta: adaptation strength.
        learn: the per-neuron constants to train (default both).
        decay: ``exponential`` or ``linear`` (``clamp(1 - dt/|tau|, 0, 1)``, the reproduction
            study's variant).
        surrogate: pseudo-derivative of the spike (default DoubleGaussian).
        fgi: forward gradient injection on the step-by-step path.
        fused: run whole sequences in the compiled cell.
        dt: time step (ms).
    """

    def __init__(self, size: int, tau_m: NeuronValue | None = None, tau_adp: NeuronValue | None = None,
                 b0: float = 0.01, beta: float = 1.8, learn: list[Literal["tau_m", "tau_adp"]] = ("tau_m", "tau_adp"),
                 decay: Literal["exponential", "linear"] = "exponential", surrogate: Surrogate = "DoubleGaussian",
                 fgi: bool = False, fused: bool = True, dt: PositiveFloat = 1.0):
        super().__init__()
        self.size, self.b0, self.beta, self.decay, self.dt = size, float(b0), float(beta), decay, dt
        self.fgi, self.fused = fgi, fused
        self.surrogate = create(surrogate, SURROGATES)
        add_neuron_constant(self, "tau_m", Normal(20.0, 5.0) if tau_m is None else tau_m, size, "tau_m" in learn)
        add_neuron_constant(self, "tau_adp", Normal(150.0, 10.0) if tau_adp is None else tau_adp, size,
                            "tau_adp" in learn)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device=None) -> ALIFState:
        zeros = torch.zeros(batch, self.size, dtype=dtype, device=device)
        return ALIFState(zeros, zeros, zeros)

    def cell(self) -> Cell:
        return Cell("alif", 2, (self.b0, self.beta), self.surrogate, "pre")

    def cell_params(self) -> tuple[Tensor, ...]:
        return decay_factor(self.tau_m, self.dt, self.decay), decay_factor(self.tau_adp, self.dt, self.decay)

    def cell_state(self, state: ALIFState) -> tuple[Tensor, ...]:
        return state.u, state.a

    def from_cell_state(self, final: tuple[Tensor, ...], z_last: Tensor) -> ALIFState:
        return ALIFState(final[0], final[1], z_last)

    def step_trace(self, current: Tensor, state: ALIFState) -> tuple[Tensor, Tensor, ALIFState]:
        alpha, rho = self.cell_params()
        a = rho * state.a + (1 - rho) * state.z
        threshold = self.b0 + self.beta * a
        pre = alpha * state.u + (1 - alpha) * current
        z = _spike(self.surrogate, self.fgi, pre - threshold)
        return z, pre, ALIFState(pre - z * threshold, a, z)
