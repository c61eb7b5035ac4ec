"""Neuron kernels: ``forward(x [T, B, N], state=None) -> (out [T, B, N], state)``.

A kernel turns the synaptic input current of ``N`` neurons into their output over ``T`` time
steps: spikes for spiking kernels, the membrane potential for non-spiking ones (PSP kernels,
leaky-integrator readouts). State is returned, never kept on the module, so a long sequence can
be fed in chunks.
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

    def trace(self, x: Tensor, state: Any = None) -> KernelTrace:
        """Run the kernel and also return the membrane trace (for recording and plots)."""
        raise NotImplementedError

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
