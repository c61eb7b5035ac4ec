"""Surrogate gradients for the spike nonlinearity.

The forward pass is always the Heaviside step ``H(x) = 1[x > 0]``; a surrogate only replaces its
derivative in the backward pass by a smooth pseudo-derivative ``g(x)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from settings import PositiveFloat, UnitInterval
from settings.registries import SURROGATES


@SURROGATES.set_base
class Surrogate:
    """Base class: ``derivative(x)`` is the pseudo-derivative of H at ``x`` (elementwise)."""

    def derivative(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def spike(self, x: Tensor) -> Tensor:
        """H(x) with this surrogate's gradient (autograd)."""
        return SpikeFunction.apply(x, self)

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        """This surrogate for the compiled cell loops (``network/kernels/cell_loops.slope``): a kind
        number and its parameters; kind 0 (the default) makes the cells call :meth:`derivative`."""
        return 0, ()

    def spike_fgi(self, x: Tensor) -> Tensor:
        """H(x) with this surrogate's gradient by forward gradient injection (no custom backward):
        ``h = x sg(g(x))``, ``y = h - sg(h) + sg(H(x))`` (sg = detach)."""
        h = x * self.derivative(x).detach()
        return h - h.detach() + (x > 0).to(x.dtype).detach()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def _gauss(x: Tensor, sigma: float) -> Tensor:
    return torch.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@SURROGATES.register
class DoubleGaussian(Surrogate):
    """``gamma*[(1+p) N(x; 0, s1) - 2p N(x; 0, s2)]`` (BRF/ALIF default: p 0.15, s1 0.5, s2 3, gamma 0.5)."""

    def __init__(self, p: UnitInterval = 0.15, s1: PositiveFloat = 0.5, s2: PositiveFloat = 3.0,
                 gamma: PositiveFloat = 0.5):
        self.p, self.s1, self.s2, self.gamma = p, s1, s2, gamma

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 1, (self.p, self.s1, self.s2, self.gamma)

    def derivative(self, x: Tensor) -> Tensor:
        return self.gamma * ((1 + self.p) * _gauss(x, self.s1) - 2 * self.p * _gauss(x, self.s2))


@SURROGATES.register
class MultiGaussian(Surrogate):
    """A Gaussian with negative side lobes: ``gamma*[(1+h) N(x;0,s) - h N(x;s,6s) - h N(x;-s,6s)]``."""

    def __init__(self, sigma: PositiveFloat = 0.5, h: UnitInterval = 0.15, gamma: PositiveFloat = 0.5):
        self.sigma, self.h, self.gamma = sigma, h, gamma

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 2, (self.sigma, self.h, self.gamma)

    def derivative(self, x: Tensor) -> Tensor:
        s, h = self.sigma, self.h
        return self.gamma * ((1 + h) * _gauss(x, s) - h * _gauss(x - s, 6 * s) - h * _gauss(x + s, 6 * s))


@SURROGATES.register
class Gaussian(Surrogate):
    """``gamma * N(x; 0, sigma)``."""

    def __init__(self, sigma: PositiveFloat = 0.5, gamma: PositiveFloat = 1.0):
        self.sigma, self.gamma = sigma, gamma

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 3, (self.sigma, self.gamma)

    def derivative(self, x: Tensor) -> Tensor:
        return self.gamma * _gauss(x, self.sigma)


@SURROGATES.register
class FastSigmoid(Surrogate):
    """SuperSpike: ``1 / (1 + k|x|)^2``."""

    def __init__(self, k: PositiveFloat = 10.0):
        self.k = k

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 4, (self.k,)

    def derivative(self, x: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.k * x.abs()) ** 2


@SURROGATES.register
class ATan(Surrogate):
    """``(a/2) / (1 + (pi a x / 2)^2)``, the derivative of ``arctan(pi a x / 2)/pi + 1/2``."""

    def __init__(self, a: PositiveFloat = 2.0):
        self.a = a

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 5, (self.a,)

    def derivative(self, x: Tensor) -> Tensor:
        return (self.a / 2) / (1 + (math.pi * self.a * x / 2) ** 2)


@SURROGATES.register
class Triangle(Surrogate):
    """``max(0, 1 - |x| / width) / width`` (width 1: ``max(0, 1 - |x|)``)."""

    def __init__(self, width: PositiveFloat = 1.0):
        self.width = width

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 6, (self.width,)

    def derivative(self, x: Tensor) -> Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width


@SURROGATES.register
class Exponential(Surrogate):
    """``gamma * exp(-|x| / scale)``."""

    def __init__(self, scale: PositiveFloat = 0.5, gamma: PositiveFloat = 1.0):
        self.scale, self.gamma = scale, gamma

    def compiled(self) -> tuple[int, tuple[float, ...]]:
        return 7, (self.scale, self.gamma)

    def derivative(self, x: Tensor) -> Tensor:
        return self.gamma * torch.exp(-x.abs() / self.scale)
