"""Readouts: from the last layer's activity ``[T, B, C]`` to class scores ``[B, C]``."""
from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from network.init import Initializer
from network.kernels.fused import leaky_recurrence
from network.kernels.lif import LIKernel
from network.kernels.params import NeuronValue
from network.layers import LayerTrace
from settings import PositiveFloat, PositiveInt, create
from settings.registries import INITIALIZERS, READOUTS


class ReadoutOutput(NamedTuple):
    scores: Tensor  # [B, C]
    time_index: Tensor | None  # [B, C] time step a score was taken at (max readouts)
    trace: Tensor | None  # [T, B, C] the readout's own membrane, if it has one
    times: Tensor | None = None  # [B, C] output spike times (first-spike readouts; inf: none)


@READOUTS.set_base
class Readout(nn.Module):
    """Base class; built with ``in_features`` (the last layer's size) at run time.
    ``has_trace``: the readout keeps its scores at every step (``ReadoutOutput.trace`` ``[T, B, C]``),
    which per-step losses (SequenceNLL) read."""

    out_features: int
    has_trace: bool = False
    takes: str = "raster"  # the last layer's activity: ``raster`` or ``continuous`` (spike times)

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        raise NotImplementedError


@READOUTS.register
class MaxMembrane(Readout):
    """``M = max_t V(t)`` of the last layer's membrane and ``t_max`` (the tempotron's decision)."""

    def __init__(self, in_features: int):
        super().__init__()
        self.out_features = in_features

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        scores, t_max = last.membrane.max(dim=0)
        return ReadoutOutput(scores, t_max, None)


@READOUTS.register
class SoftMaxMembrane(Readout):
    """A soft maximum over time of the last layer's membrane, on the membrane's scale:
    ``s = log(sum_t exp(beta V_t) dt) / beta``, which tends to ``max_t V`` as beta grows; the loss
    compares it with v_th. ``t_max`` is the argmax of V.

    specs/tempotron.md writes IntegrateLR's score without the ``1 / beta``; compared with v_th
    that score would call a silent neuron firing (``V = 0`` everywhere scores ``log(T dt) > v_th``),
    so Spikelab divides by beta. IntegrateLR keeps the spec's gradient ``beta sum_t softmax_t PSP_t``.

    Args:
        beta: sharpness (per unit of membrane potential).
        dt: time step (ms).
    """

    def __init__(self, in_features: int, beta: PositiveFloat = 50.0, dt: PositiveFloat = 1.0):
        super().__init__()
        self.out_features, self.beta, self.dt = in_features, beta, dt

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        v = last.membrane
        scores = (torch.logsumexp(self.beta * v, dim=0) + math.log(self.dt)) / self.beta
        return ReadoutOutput(scores, v.detach().argmax(dim=0), None)


@READOUTS.register
class SpikeCount(Readout):
    """Number of spikes of each output neuron over the sequence."""

    def __init__(self, in_features: int):
        super().__init__()
        self.out_features = in_features

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        return ReadoutOutput(last.out.sum(dim=0), None, None)


@READOUTS.register
class LeakyIntegrator(Readout):
    """Weighted leaky-integrator output neurons ``o_t = alpha o_{t-1} + (1 - alpha) W z_t``.

    Args:
        out_features: number of classes.
        tau: time constant (ms): a number, or an initializer drawn per output
            (``{type: Normal, mean: 20, std: 5}``; the decay uses ``|tau|``).
        learn_tau: train one tau per output.
        decay: ``exponential`` (``alpha = exp(-dt/|tau|)``) or ``linear`` (``clamp(1 - dt/|tau|,
            0, 1)``, the reproduction study's variant).
        parametrization: ``tau`` (the parameter is tau) or ``sigmoid`` (the parameter ``s`` gives
            ``alpha = sigmoid(s)``, initialised so that alpha starts at its value for ``tau``; the
            BHRF papers' readout).
        reduce: scores from the trace: ``max``, ``mean`` or ``last`` over time.
        bias: add a learnable bias.
        weight_init: initial weights (default: torch.nn.Linear's).
        dt: time step (ms).
    """

    has_trace = True

    def __init__(self, in_features: int, out_features: PositiveInt, tau: NeuronValue = 20.0,
                 learn_tau: bool = False, decay: Literal["exponential", "linear"] = "exponential",
                 parametrization: Literal["tau", "sigmoid"] = "tau", reduce: Literal["max", "mean", "last"] = "mean",
                 bias: bool = False, weight_init: Initializer | None = None, dt: PositiveFloat = 1.0):
        super().__init__()
        self.out_features, self.reduce = out_features, reduce
        self.decay, self.parametrization, self.dt = decay, parametrization, dt
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        create(weight_init or "KaimingUniform", INITIALIZERS)(self.weight.data)
        self.kernel = LIKernel(out_features, tau=tau, learn_tau=learn_tau, dt=dt)
        if parametrization == "sigmoid":  # kernel.tau holds logit(alpha) from here on
            with torch.no_grad():
                self.kernel.tau.copy_(torch.logit(self._alpha_from_tau()))

    def alpha(self) -> Tensor:
        """The decay per step of each output (from tau, or the sigmoid of the parameter)."""
        return torch.sigmoid(self.kernel.tau) if self.parametrization == "sigmoid" else self._alpha_from_tau()

    def _alpha_from_tau(self) -> Tensor:
        tau = self.kernel.tau
        if self.decay == "linear":
            return (1.0 - self.dt / tau.abs()).clamp(0.0, 1.0)
        return torch.exp(-self.dt / tau.abs())

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        drive = nn.functional.linear(last.out, self.weight, self.bias)
        alpha = self.alpha()
        v = leaky_recurrence((1 - alpha) * drive, alpha, torch.zeros_like(drive[0]))
        if self.reduce == "max":
            scores, index = v.max(dim=0)
            return ReadoutOutput(scores, index, v)
        return ReadoutOutput(v.mean(dim=0) if self.reduce == "mean" else v[-1], None, v)


@READOUTS.register
class SpikeTimeReadout(Readout):
    """The last first-spike layer's output times as the classes' times (``ReadoutOutput.times``,
    +inf: no spike) and ``scores = -times``: the earliest spike scores highest."""

    takes = "continuous"

    def __init__(self, in_features: int):
        super().__init__()
        self.out_features = in_features

    def forward(self, last: LayerTrace) -> ReadoutOutput:
        times = last.out.times
        return ReadoutOutput(-times, None, None, times)
