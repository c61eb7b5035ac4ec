"""Weight initialisers, usable from YAML (``weight_init: {type: Normal, mean: 0, std: 0.01}``)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from settings import PositiveFloat
from settings.registries import INITIALIZERS


@INITIALIZERS.set_base
class Initializer:
    """Fills a weight tensor ``[out, in]`` in place, drawing from torch's global (seeded) RNG."""

    def __call__(self, weight: Tensor) -> None:
        raise NotImplementedError


@INITIALIZERS.register
class Normal(Initializer):
    """Weights drawn from N(mean, std^2)."""

    def __init__(self, mean: float = 0.0, std: PositiveFloat = 0.01):
        self.mean, self.std = mean, std

    def __call__(self, weight: Tensor) -> None:
        torch.nn.init.normal_(weight, self.mean, self.std)


@INITIALIZERS.register
class Uniform(Initializer):
    """Weights drawn from U(low, high)."""

    def __init__(self, low: float = -0.1, high: float = 0.1):
        self.low, self.high = low, high

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        return [("high", f"must be > low ({params['low']}), got {params['high']}")] \
            if params["high"] <= params["low"] else []

    def __call__(self, weight: Tensor) -> None:
        torch.nn.init.uniform_(weight, self.low, self.high)


@INITIALIZERS.register
class Constant(Initializer):
    """Every weight set to ``value``."""

    def __init__(self, value: float = 0.0):
        self.value = value

    def __call__(self, weight: Tensor) -> None:
        torch.nn.init.constant_(weight, self.value)


@INITIALIZERS.register
class XavierUniform(Initializer):
    """Glorot uniform: U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, gain: PositiveFloat = 1.0):
        self.gain = gain

    def __call__(self, weight: Tensor) -> None:
        torch.nn.init.xavier_uniform_(weight, self.gain)


@INITIALIZERS.register
class KaimingUniform(Initializer):
    """torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) scaled by ``scale``."""

    def __init__(self, scale: PositiveFloat = 1.0):
        self.scale = scale

    def __call__(self, weight: Tensor) -> None:
        bound = self.scale / math.sqrt(weight.shape[1])
        torch.nn.init.uniform_(weight, -bound, bound)
