"""Neuron kernels: ``forward(x [T, B, N], state=None) -> (out [T, B, N], state)``.

A kernel turns the synaptic input current of ``N`` neurons into their output over ``T`` time
steps: spikes for spiking kernels, the membrane potential for non-spiking ones (PSP kernels,
leaky-integrator readouts). State is returned, never kept on the module, so a long sequence can
be fed in chunks.

The contract (Norse style): ``initial_state(batch)`` gives the state before the first step, the
pure ``step_trace(x_t [B, N], state) -> (out_t, membrane_t, state)`` advances one step (``step``
returns ``(out_t, state)``), and ``trace(x [T, B, N], state)`` runs a whole sequence. ``trace``
defaults to a loop over ``step_trace``; kernels with a faster whole-sequence form (a fused
recurrence with a hand-written backward, exponential traces) override it, and a test holds the
two equal. Recurrent layers step the kernel, so every kernel must step.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from settings.registries import KERNELS


class KernelTrace(NamedTuple):
    out: Tensor  # [T, B, N] spikes (spiking kernels) or membrane
    state: Any
    membrane: Tensor  # [T, B, N] membrane potential (before reset)


@KERNELS.set_base
class Kernel(nn.Module):
    """Base class of neuron kernels (built with ``size`` = number of neurons)."""

    spiking: bool = True

    def __init__(self) -> None:
        super().__init__()
        self._impulse_tables: dict[tuple, Tensor] = {}

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        trace = self.trace(x, state)
        return trace.out, trace.state

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device: Any = None) -> Any:
        """The state before the first step, for ``batch`` samples."""
        raise NotImplementedError(f"{type(self).__name__} does not define initial_state")

    def step_trace(self, x: Tensor, state: Any) -> tuple[Tensor, Tensor, Any]:
        """One time step: input current ``[B, N]`` -> output, membrane (before reset), new state."""
        raise NotImplementedError(f"{type(self).__name__} does not define step_trace")

    def step(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One time step: ``(out_t [B, N], state)``; ``state`` None starts from ``initial_state``."""
        if state is None:
            state = self.initial_state(x.shape[0], x.dtype, x.device)
        out, _, state = self.step_trace(x, state)
        return out, state

    def trace(self, x: Tensor, state: Any = None) -> KernelTrace:
        """Run the kernel over ``x`` ``[T, B, N]`` and also return the membrane trace (for
        recording and plots). The default loops over :meth:`step_trace`."""
        return self.trace_steps(x, state)

    def trace_steps(self, x: Tensor, state: Any = None) -> KernelTrace:
        """:meth:`trace` as a loop over :meth:`step_trace` (plain autograd): the reference that a
        kernel's own fused ``trace`` must equal."""
        if state is None:
            state = self.initial_state(x.shape[1], x.dtype, x.device)
        outs, membranes = [], []
        for x_t in x.unbind(0):
            out, membrane, state = self.step_trace(x_t, state)
            outs.append(out)
            membranes.append(membrane)
        return KernelTrace(torch.stack(outs), state, torch.stack(membranes))

    def fused_recurrent(self, drive: Tensor, weight: Tensor | None, z0: Tensor, state: Any):
        """A whole sequence of a ``Recurrent`` layer in one fused cell: ``I_t = drive_t + W
        z_{t-1}`` -> ``(spikes [T, B, N], membrane [T, B, N], last spikes, state)``; ``None`` where
        this kernel (or this input) has no fused cell, and the layer steps it instead."""
        return None

    def response(self, steps: Tensor) -> Tensor:
        """Linear, reset-free kernels only: the output at step ``k`` to a unit input at step 0,
        for ``steps`` = 0..T-1 (float64). Learning rules that need PSPs read it."""
        raise TypeError(f"{type(self).__name__} is not a linear kernel: it has no impulse response")

    def impulse_response(self, T: int, dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        """``response(k)`` for k = 0..T-1, cached per length, dtype and device."""
        key = (T, dtype, str(device))
        if key not in self._impulse_tables:
            self._impulse_tables[key] = self.response(torch.arange(T, dtype=torch.float64, device=device)).to(dtype)
        return self._impulse_tables[key]
