"""Layers: a synaptic projection followed by a neuron kernel."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from network.events import SpikeTimes
from network.init import Initializer
from network.kernels.base import Kernel
from settings import Factory, PositiveInt
from settings.registries import INITIALIZERS, LAYERS


class LayerTrace(NamedTuple):
    input: Tensor | SpikeTimes  # what the layer received
    out: Tensor  # [T, B, N] spikes or membrane
    membrane: Tensor  # [T, B, N]
    state: Any
    spiking: bool  # whether ``out`` holds spikes


@LAYERS.set_base
class Layer(nn.Module):
    """Base class: ``forward(x, state=None) -> LayerTrace``; built with ``in_features`` at run time."""

    out_features: int
    kernel: Kernel

    @property
    def spiking(self) -> bool:
        return self.kernel.spiking


def scatter_current(times: SpikeTimes, weight: Tensor) -> Tensor:
    """Synaptic current ``[T, B, O]`` from single input spikes: ``I[t_i, b, :] += W[:, i]``.

    Costs ``B * N * O`` additions instead of the ``T * B * N * O`` of a dense product.
    """
    B, N = times.times.shape
    O = weight.shape[0]
    current = torch.zeros(times.T * B, O, dtype=weight.dtype, device=weight.device)
    b, n = (times.times >= 0).nonzero(as_tuple=True)
    rows = times.times[b, n] * B + b
    current = current.index_add(0, rows, weight.t()[n])
    return current.reshape(times.T, B, O)


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
        INITIALIZERS.create(weight_init or "KaimingUniform")(self.weight.data)
        self.kernel = kernel(size=out_features) if isinstance(kernel, Factory) else kernel

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

    def psp(self, x: Tensor | SpikeTimes, at: Tensor) -> Tensor:
        """``dV[at[b, o], b, o] / dW[o, i]`` for a linear (reset-free) kernel: the PSP of input i
        at time step ``at[b, o]``, shape ``[B, O, in]``. Needs ``kernel.impulse_response``."""
        T = x.T if isinstance(x, SpikeTimes) else x.shape[0]
        K = self.kernel.impulse_response(T, dtype=self.weight.dtype, device=self.weight.device)
        if isinstance(x, SpikeTimes):
            lag = at.unsqueeze(-1) - x.times.unsqueeze(1)  # [B, O, in]
            valid = (x.times.unsqueeze(1) >= 0) & (lag >= 0)
            return torch.where(valid, K[lag.clamp(min=0, max=T - 1)], torch.zeros((), dtype=K.dtype))
        lag = at.unsqueeze(-1) - torch.arange(T, device=at.device)  # [B, O, T]
        kmat = torch.where(lag >= 0, K[lag.clamp(min=0, max=T - 1)], torch.zeros((), dtype=K.dtype))
        return torch.einsum("bot,tbi->boi", kmat, x.to(kmat.dtype))
