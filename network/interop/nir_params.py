"""The parameter map between Spikelab's discrete-time neurons and NIR's continuous-time ones.

NIR writes each neuron as an ODE and leaves the time stepping to the simulator; Spikelab's
kernels are already discrete. The NIR constants are chosen so that a **forward-Euler step of
length dt** (what snnTorch, Norse and most discrete-time NIR consumers do,
``u_t = u_{t-1} + dt / tau (v_leak - u_{t-1} + r I_t)``, the input of step t used in step t)
reproduces the Spikelab step exactly. With ``alpha = exp(-dt_k / tau_m)`` and
``beta = exp(-dt_k / tau_syn)`` (``dt_k`` the kernel's own step in ms):

LIF, current-based ``u_t = alpha u_{t-1} + (1 - alpha) I_t``, and LI (LIKernel, the
LeakyIntegrator readout) ``o_t = alpha o_{t-1} + (1 - alpha) I_t``::

    nir.LIF / nir.LI:  tau = dt / (1 - alpha),  r = 1,  v_leak = 0,  v_threshold = v_th

(a LeakyIntegrator with ``decay: linear`` or ``parametrization: sigmoid`` gets the same
``tau = dt / (1 - alpha)`` of its own alpha; LeakyKernel ``U_t = b U_{t-1} + x_t`` gets
``tau = dt / (1 - b)`` and ``r = 1 / (1 - b)``).

CUBA LIF, ``i_t = beta i_{t-1} + I_t``, ``u_t = alpha u_{t-1} + i_t``::

    nir.CubaLIF:  tau_syn = dt / (1 - beta),   w_in = 1 / (1 - beta)  (= tau_syn / dt)
                  tau_mem = dt / (1 - alpha),  r    = 1 / (1 - alpha) (= tau_mem / dt)
                  v_leak = 0,  v_threshold = v_th

so Euler's ``I`` is Spikelab's ``i`` and both models have the same steady state
(``r w_in I`` in NIR, ``I / ((1 - alpha)(1 - beta))`` here). ``tau = dt / (1 - exp(-dt / tau_m))``
is ``tau_m + dt / 2 + O(dt^2 / tau_m)``: a simulator that integrates the ODE exactly
(``exp(-dt / tau)``) instead of by Euler gets a slightly slower decay than Spikelab.

``dt`` is the step of the simulator the graph is meant for, in the unit its time constants are
written in: ``to_nir(network)`` uses the kernels' own step (ms), ``to_nir(network, dt=1e-3)``
writes time constants in seconds for a 1 ms step. The map only fixes the decay per step, so the
exported model is the same discrete model in either unit.

Everything is computed in float64 (``expm1``/``log1p``), so ``tau_m -> tau -> tau_m`` returns
the same float32 value and an imported network steps exactly like the exported one.
"""
from __future__ import annotations

import numpy as np


class NIRExportError(ValueError):
    """A network (a kernel, layer or readout of it) that has no NIR form; the message is one line."""


class NIRImportError(ValueError):
    """A NIR graph that has no Spikelab form; the message is one line naming the node."""


def decay(tau: np.ndarray, kernel_dt: float) -> np.ndarray:
    """``exp(-dt_k / |tau|)`` in float64 (the kernels decay with ``|tau|``)."""
    return np.exp(-kernel_dt / np.abs(np.asarray(tau, dtype=np.float64)))


def nir_tau(tau: np.ndarray, kernel_dt: float, dt: float) -> np.ndarray:
    """The NIR time constant ``dt / (1 - exp(-dt_k / tau))`` of a Spikelab time constant (float64)."""
    return dt / -np.expm1(-kernel_dt / np.abs(np.asarray(tau, dtype=np.float64)))


def nir_gain(tau: np.ndarray, kernel_dt: float) -> np.ndarray:
    """``1 / (1 - exp(-dt_k / tau))``: CubaLIF's ``w_in`` (of tau_syn) and ``r`` (of tau_mem)."""
    return 1.0 / -np.expm1(-kernel_dt / np.abs(np.asarray(tau, dtype=np.float64)))


def spikelab_tau(tau: np.ndarray, kernel_dt: float, dt: float, where: str) -> np.ndarray:
    """The inverse of :func:`nir_tau`: the Spikelab time constant (ms, float64) whose decay
    ``exp(-dt_k / tau_m)`` equals Euler's ``1 - dt / tau``; needs ``tau > dt`` (a decay in (0, 1))."""
    tau = np.asarray(tau, dtype=np.float64)
    if not np.all(tau > dt):
        raise NIRImportError(f"{where} must be > dt = {dt:g} everywhere (a forward-Euler decay 1 - dt/tau in "
                             f"(0, 1)), got min {float(tau.min()):g}")
    return kernel_dt / -np.log1p(-dt / tau)


def per_neuron(value, size: int) -> np.ndarray:
    """A scalar or ``[size]`` constant as a float64 ``[size]`` array (NIR wants one per neuron)."""
    array = np.asarray(value, dtype=np.float64)
    return np.broadcast_to(array, (size,)).copy()


def uniform(values: np.ndarray, where: str) -> float:
    """The one value of an array that Spikelab holds as a single number (thresholds, resets)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size and not np.all(values == values[0]):
        raise NIRImportError(f"{where} differs between neurons ({float(values.min()):g} .. {float(values.max()):g}); "
                             "Spikelab kernels take one value for all neurons")
    return float(values[0]) if values.size else 0.0
