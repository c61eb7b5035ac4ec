"""Layers: a synaptic projection followed by a neuron kernel."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from network.events import Activity, SpikeTimes
from network.init import Initializer
from network.kernels.base import Kernel
from network.kernels.filters import causal_correlate
from settings import Factory, PositiveInt, create
from settings.registries import INITIALIZERS, LAYERS


class LayerTrace(NamedTuple):
    input: Activity  # what the layer received
    out: Activity  # [T, B, N] spikes or membrane, or events (first-spike layers: ContinuousSpikes)
    membrane: Tensor | None  # [T, B, N]; None for layers that compute spike times in closed form
    state: Any
    spiking: bool  # whether ``out`` holds spikes
    penalty: dict[str, Tensor] | None = None  # named terms for regularisers (LossInput.penalties)


@LAYERS.set_base
class Layer(nn.Module):
    """Base class: ``forward(x, state=None) -> LayerTrace``; built with ``in_features`` at run time."""

    out_features: int
    kernel: Kernel
    #: the activity the layer consumes: ``raster`` (``[T, B, N]``, or grid SpikeTimes) or
    #: ``continuous`` (ContinuousSpikes: first-spike-time layers)
    takes: str = "raster"

    @property
    def spiking(self) -> bool:
        return self.kernel.spiking


def scatter_current(times: SpikeTimes, weight: Tensor) -> Tensor:
    """Synaptic current ``[T, B, O]`` from single input spikes: ``I[t_i, b, :] += W[:, i]``.

    Costs ``B * N * O`` additions instead of the ``T * B * N * O`` of a dense product. The sum
    runs along the time axis of an ``[O, B, T + 1]`` buffer whose first step (step -1) collects
    the silent inputs and is dropped; returned as a ``[T, B, O]`` view (time-contiguous).
    """
    B, N = times.times.shape
    O, T = weight.shape[0], times.T
    index = (times.times + 1).unsqueeze(0).expand(O, B, N)
    current = torch.zeros(O, B, T + 1, dtype=weight.dtype, device=weight.device)
    current = current.scatter_add(2, index, weight.unsqueeze(1).expand(O, B, N))
    return current[:, :, 1:].permute(2, 1, 0)


@LAYERS.register
class Dense(Layer):
    """All-to-all synapses ``W [out, in]`` (optionally a bias) feeding ``out_features`` neurons.

    Args:
        out_features: number of neurons.
        kernel: the neuron model.
        bias: add a learnable bias current.
        weight_init: initial weights (default: torch.nn.Linear's uniform init).
    """

    def __init__(self, in_features: int, out_features: PositiveInt, kernel: Factory[Kernel],
                 bias: bool = False, weight_init: Initializer | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        create(weight_init or "KaimingUniform", INITIALIZERS)(self.weight.data)
        self.kernel = kernel(size=out_features) if isinstance(kernel, Factory) else kernel
        self._tables: dict[tuple, Tensor] = {}  # padded kernel table of psp()

    def current(self, x: Tensor | SpikeTimes) -> Tensor:
        """Synaptic input ``[T, B, out]``, the matrix product done once for all time steps."""
        if isinstance(x, SpikeTimes):
            current = scatter_current(x, self.weight)
        else:
            current = torch.nn.functional.linear(x, self.weight)
        return current if self.bias is None else current + self.bias

    def forward(self, x: Tensor | SpikeTimes, state: Any = None) -> LayerTrace:
        out, new_state, membrane = self.kernel.trace(self.current(x), state)
        return LayerTrace(x, out, membrane, new_state, self.kernel.spiking)

    def _kernel_table(self, T: int) -> Tensor:
        """The kernel's impulse response; PSP eligibilities need a linear, reset-free kernel
        (DENKernel, SequentialDENKernel, LeakyKernel without reset), others raise TypeError."""
        return self.kernel.impulse_response(T, dtype=torch.float64, device=self.weight.device)

    def psp(self, x: Tensor | SpikeTimes, at: Tensor) -> Tensor:
        """``dV[at[b, o], b, o] / dW[o, i]`` for a linear (reset-free) kernel: the PSP of input i
        at time step ``at[b, o]``, shape ``[B, O, in]``. Needs ``kernel.impulse_response``.

        The point case of :meth:`eligibility` (weights one-hot at ``at``), done as a lookup of the
        kernel at the lags ``at - t_i`` instead of a correlation over time."""
        T = x.T if isinstance(x, SpikeTimes) else x.shape[0]
        if isinstance(x, SpikeTimes):
            # table [0] * (T + 1) + K: index T + 1 + lag; negative lags and silent inputs (moved to
            # step T + 1) read a zero
            table = self._padded_table(T)
            steps = torch.where(x.times >= 0, x.times, T + 1)
            index = (at + (T + 1)).unsqueeze(-1) - steps.unsqueeze(1)  # [B, O, in]
            return table.index_select(0, index.reshape(-1)).reshape(index.shape)
        K = self._kernel_table(T).to(self.weight.dtype)
        lag = torch.arange(T, device=at.device).reshape(T, 1, 1)
        lag = at.unsqueeze(0) - lag  # [T, B, O]
        return self._at_inputs(x, K.take(lag.clamp(min=0)).masked_fill_(lag < 0, 0.0))

    def _padded_table(self, T: int) -> Tensor:
        key = (T, self.weight.dtype, str(self.weight.device))
        table = self._tables.get(key)
        if table is None:
            K = self._kernel_table(T).to(self.weight.dtype)
            table = torch.cat([torch.zeros(T + 1, dtype=K.dtype, device=K.device), K])
            self._tables = {key: table}
        return table

    def eligibility(self, x: Tensor | SpikeTimes, weights: Tensor) -> Tensor:
        """``sum_t weights[t, b, o] dV[t, b, o] / dW[o, i]`` for a linear (reset-free) kernel, shape
        ``[B, O, in]``; ``weights`` ``[T, B, O]``.

        ``dV[t] / dW[o, i] = sum_s x[s, i] K(t - s)``, so the sum is ``sum_s x[s, i] g[s]`` with
        ``g[s] = sum_{t >= s} weights[t] K(t - s)``, one causal correlation for all inputs."""
        T = weights.shape[0]
        g = causal_correlate(weights.to(torch.float64), self._kernel_table(T))
        return self._at_inputs(x, g.to(self.weight.dtype))

    @staticmethod
    def _at_inputs(x: Tensor | SpikeTimes, g: Tensor) -> Tensor:
        """``sum_s x[s, b, i] g[s, b, o]`` ``[B, O, in]``: for single spikes, ``g`` at each spike time."""
        if isinstance(x, SpikeTimes):
            B, N = x.times.shape
            O = g.shape[-1]
            index = x.times.clamp(min=0).unsqueeze(1).expand(B, O, N)
            return g.permute(1, 2, 0).gather(2, index).masked_fill((x.times < 0).unsqueeze(1), 0.0)
        return torch.einsum("tbo,tbi->boi", g, x.to(g.dtype))
