"""Learnable transmission delays of first-spike-time layers (DelGrad, specs/first_spike.md).

A delay is added to the input times of a :class:`~network.first_spike.layer.FirstSpikeLIF` layer:
``t' = t + d``. ``SynapticDelay``: one per (post, pre) pair ``[O, I]``; ``AxonalDelay``: one per
presynaptic neuron ``[I]``; ``DendriticDelay``: one per postsynaptic neuron ``[O]``. The gradient
``dL/dd`` is the one of the shifted input time, so the delays train through the layer's exact
spike-time gradients.

Parametrisations of ``d`` by the trained parameter ``theta``:

- ``sigmoid``: ``d = shift + scale * sigmoid(theta)`` (bounded in ``[shift, shift + scale]``);
- ``clip``: ``d = shift + clamp(theta, 0, scale)`` (no gradient where it is clipped);
- ``shift``: ``d = shift + theta`` (unbounded).

``theta`` starts so that ``d = shift + scale * sigmoid(N(0, init_std^2))`` under every
parametrisation. The layer reports ``sum d^2`` as the penalty ``delay_l2`` (the ``DelayL2``
regulariser).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from settings import NonNegativeFloat, PositiveFloat
from settings.registries import DELAYS

Parametrization = Literal["sigmoid", "clip", "shift"]


@DELAYS.set_base
class Delay(nn.Module):
    """Base: ``forward(t [B, I]) -> [B, S, I]`` delayed input times (``S`` 1 or ``out_features``);
    built with the layer's ``in_features`` and ``out_features``.

    Args:
        parametrization: ``sigmoid``, ``clip`` or ``shift`` (module docstring).
        shift: the smallest delay (tau_s).
        scale: the range of delays (tau_s).
        init_std: spread of the initial ``theta`` (``N(0, init_std^2)``).
    """

    def __init__(self, shape: tuple[int, ...], parametrization: Parametrization = "sigmoid",
                 shift: float = 0.0, scale: PositiveFloat = 1.0, init_std: NonNegativeFloat = 0.25):
        super().__init__()
        self.parametrization, self.shift, self.scale = parametrization, shift, scale
        theta = torch.randn(shape) * init_std
        if parametrization != "sigmoid":
            theta = scale * torch.sigmoid(theta)
        self.theta = nn.Parameter(theta)

    def delays(self) -> Tensor:
        """The delays ``d`` (tau_s), in the parameter's shape."""
        if self.parametrization == "sigmoid":
            return self.shift + self.scale * torch.sigmoid(self.theta)
        if self.parametrization == "clip":
            return self.shift + self.theta.clamp(0.0, self.scale)
        return self.shift + self.theta

    def forward(self, t: Tensor) -> Tensor:
        raise NotImplementedError


@DELAYS.register
class SynapticDelay(Delay):
    """One delay per synapse ``[out, in]``: ``t'[b, o, i] = t[b, i] + d[o, i]``."""

    def __init__(self, in_features: int, out_features: int, parametrization: Parametrization = "sigmoid",
                 shift: float = 0.0, scale: PositiveFloat = 1.0, init_std: NonNegativeFloat = 0.25):
        super().__init__((out_features, in_features), parametrization, shift, scale, init_std)

    def forward(self, t: Tensor) -> Tensor:
        return t.unsqueeze(1) + self.delays().unsqueeze(0)


@DELAYS.register
class AxonalDelay(Delay):
    """One delay per presynaptic neuron ``[in]``: ``t'[b, i] = t[b, i] + d[i]``."""

    def __init__(self, in_features: int, out_features: int, parametrization: Parametrization = "sigmoid",
                 shift: float = 0.0, scale: PositiveFloat = 1.0, init_std: NonNegativeFloat = 0.25):
        super().__init__((in_features,), parametrization, shift, scale, init_std)

    def forward(self, t: Tensor) -> Tensor:
        return (t + self.delays()).unsqueeze(1)


@DELAYS.register
class DendriticDelay(Delay):
    """One delay per postsynaptic neuron ``[out]``: ``t'[b, o, i] = t[b, i] + d[o]``."""

    def __init__(self, in_features: int, out_features: int, parametrization: Parametrization = "sigmoid",
                 shift: float = 0.0, scale: PositiveFloat = 1.0, init_std: NonNegativeFloat = 0.25):
        super().__init__((out_features,), parametrization, shift, scale, init_std)

    def forward(self, t: Tensor) -> Tensor:
        return t.unsqueeze(1) + self.delays().reshape(1, -1, 1)
