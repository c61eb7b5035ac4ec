"""Neuron kernels: ``forward(x [T, B, N], state=None) -> (out [T, B, N], state)``.

A kernel turns the synaptic input current of ``N`` neurons into their output over ``T`` time
steps: spikes for spiking kernels, the membrane potential for non-spiking ones (PSP kernels,
leaky-integrator readouts). State is returned, never kept on the module, so a long sequence can
be fed in chunks.
"""
from __future__ import annotations

from typing import Any, NamedTuple

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

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        trace = self.trace(x, state)
        return trace.out, trace.state

    def trace(self, x: Tensor, state: Any = None) -> KernelTrace:
        """Run the kernel and also return the membrane trace (for recording and plots)."""
        raise NotImplementedError
