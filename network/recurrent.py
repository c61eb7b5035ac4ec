"""``Recurrent``: a layer whose neurons also receive their own spikes of the previous step."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from network.events import SpikeTimes
from network.init import Initializer
from network.kernels.base import Kernel
from network.layers import Layer, LayerTrace
from settings import Factory, PositiveInt, UnitInterval, create
from settings.registries import INITIALIZERS, LAYERS


class RecurrentState(NamedTuple):
    z: Tensor  # the layer's output at the last step [B, N]
    kernel: Any  # the kernel's state after the last step


@LAYERS.register
class Recurrent(Layer):
    """``I_t = W [x_t ; z_{t-1}] + b`` stepped through any kernel: one linear map on the
    concatenation of the input and the layer's own previous output.

    The input part of ``W`` is applied to all time steps at once (one matrix product); only the
    recurrent part runs inside the loop over time, where the kernel steps
    (``Kernel.step_trace``). ``W`` ``[out, in + out]`` is initialised as one matrix (Xavier
    uniform by default, over the whole fan-in ``in + out``).

    Args:
        out_features: number of neurons.
        kernel: the neuron model (any kernel; it is stepped).
        bias: add a learnable bias current.
        weight_init: initial weights of ``W`` (default: XavierUniform).
        recurrent_mask: sparsity of the recurrent synapses: the fraction removed by a fixed
            random mask (drawn with the weights, from the run's seed); ``null`` keeps them all.
        tbptt: truncated backpropagation through time: gradients flow back at most this many
            steps (the sequence runs in chunks of ``tbptt`` steps and the state passed between
            chunks is detached); ``null``: through the whole sequence.

    Kernels with a fused cell (RF, BRF, BHRF, ALIF; ``Kernel.fused_recurrent``) run each chunk in
    one compiled loop with a hand-written backward; the others are stepped.
    """

    def __init__(self, in_features: int, out_features: PositiveInt, kernel: Factory[Kernel], bias: bool = True,
                 weight_init: Initializer | None = None, recurrent_mask: UnitInterval | None = None,
                 tbptt: PositiveInt | None = None):
        super().__init__()
        self.tbptt = tbptt
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features + out_features))
        create(weight_init or "XavierUniform", INITIALIZERS)(self.weight.data)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        if recurrent_mask is None:
            self.mask = None
        else:
            self.register_buffer("mask", (torch.rand(out_features, out_features) >= recurrent_mask).float())
        self.kernel = kernel(size=out_features) if isinstance(kernel, Factory) else kernel

    @property
    def input_weight(self) -> Tensor:
        return self.weight[:, : self.in_features]

    @property
    def recurrent_weight(self) -> Tensor:
        weight = self.weight[:, self.in_features:]
        return weight if self.mask is None else weight * self.mask.to(weight.dtype)

    def initial_state(self, batch: int, dtype: torch.dtype = torch.float32, device: Any = None) -> RecurrentState:
        return RecurrentState(torch.zeros(batch, self.out_features, dtype=dtype, device=device),
                              self.kernel.initial_state(batch, dtype, device))

    def forward(self, x: Tensor | SpikeTimes, state: RecurrentState | None = None) -> LayerTrace:
        """``x`` ``[T, B, in]`` (or single spikes); returns the output and membrane ``[T, B, out]``."""
        dense = x.to_dense(self.weight.dtype) if isinstance(x, SpikeTimes) else x
        drive = nn.functional.linear(dense, self.input_weight, self.bias)  # [T, B, out], all steps at once
        if state is None:
            state = self.initial_state(drive.shape[1], drive.dtype, drive.device)
        recurrent = self.recurrent_weight
        z, kernel_state = state
        outs, membranes = [], []
        for index, chunk in enumerate(drive.split(self.tbptt) if self.tbptt else (drive,)):
            if index:  # truncated BPTT: no gradient crosses a chunk border
                z, kernel_state = z.detach(), _detached(kernel_state)
            fused = self.kernel.fused_recurrent(chunk, recurrent, z, kernel_state)
            if fused is not None:
                out, membrane, z, kernel_state = fused
                outs.append(out)
                membranes.append(membrane)
                continue
            for drive_t in chunk.unbind(0):
                z, membrane, kernel_state = self.kernel.step_trace(drive_t + nn.functional.linear(z, recurrent),
                                                                   kernel_state)
                outs.append(z.unsqueeze(0))
                membranes.append(membrane.unsqueeze(0))
        out, membrane = (outs[0], membranes[0]) if len(outs) == 1 else (torch.cat(outs), torch.cat(membranes))
        return LayerTrace(x, out, membrane, RecurrentState(z, kernel_state),
                          self.kernel.spiking)


def _detached(state: Any) -> Any:
    """A kernel state (a tensor or a NamedTuple of tensors and Nones) cut from the graph."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        return type(state)(*[_detached(item) for item in state])
    return state
