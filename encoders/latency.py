"""Latency (time-to-first-spike) coding: one spike per input."""
from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import Tensor

from encoders.base import Encoder, check_steps, n_steps
from network.events import SpikeTimes
from settings import Gt, Lt, PositiveFloat
from settings.registries import ENCODERS


@ENCODERS.register
class LatencyEncoder(Encoder):
    """One spike per input, at a step linear in the input (``code: linear``) or at the time an RC
    neuron charged by it takes to reach a threshold (``code: log``).

    With ``v = x / x_max`` clipped to [0, 1] and ``L = T / dt`` steps:

    - ``code: linear``: step ``floor(v (L - 1))`` (``direction: late``: larger values spike later)
      or ``floor((1 - v) (L - 1))`` (``early``: larger values first);
    - ``code: log``: the time ``t = tau ln(v / (v - theta))`` ms an RC neuron charged by ``v``
      takes to reach ``theta`` (larger values first), at step ``floor(t / dt)``, times past the
      window on the last step; inputs with ``v <= theta`` never reach it and stay silent.
      ``direction: late`` mirrors the steps (``L - 1 - step``).

    ``normalize`` scales each sample to [0, 1] first (``(x - min) / (max - min)`` over the
    sample's values; a constant sample becomes 0) in place of dividing by ``x_max``.

    Args:
        T: duration of a sample (ms).
        dt: time step (ms).
        x_max: the input value mapped to the last (first) step; values are clipped to [0, x_max].
        direction: ``late`` or ``early``.
        silent_below: inputs at or below this value emit no spike (``null``: none are silent).
        output: ``times`` (event form ``[B, F]``, consumed event by event) or ``dense`` (a
            raster ``[L, B, ...]`` of any input shape ``[B, ...]``, images ``[B, C, H, W]`` too).
        code: ``linear`` or ``log``.
        tau: ``log``: the time constant (ms).
        theta: ``log``: the threshold, in units of ``x_max`` (0 < theta < 1).
        normalize: scale each sample to [0, 1] instead of dividing by ``x_max``.
    """

    def __init__(self, T: PositiveFloat = 100.0, dt: PositiveFloat = 1.0, x_max: PositiveFloat = 1.0,
                 direction: Literal["late", "early"] = "late", silent_below: float | None = None,
                 output: Literal["times", "dense"] = "times", code: Literal["linear", "log"] = "linear",
                 tau: PositiveFloat = 5.0, theta: Annotated[float, Gt(0), Lt(1)] = 0.01, normalize: bool = False):
        self.T, self.dt, self.steps, self.x_max, self.direction = T, dt, n_steps(T, dt), x_max, direction
        self.silent_below, self.output = silent_below, output
        self.code, self.tau, self.theta, self.normalize = code, tau, theta, normalize

    check_params = staticmethod(check_steps)

    def scaled(self, x: Tensor) -> Tensor:
        """``v`` in [0, 1] (float64), of the shape of ``x``."""
        x = x.to(torch.float64)
        if not self.normalize:
            return (x / self.x_max).clamp(0.0, 1.0)
        flat = x.flatten(1)
        low, high = flat.min(dim=1).values, flat.max(dim=1).values
        span = (high - low).reshape((-1,) + (1,) * (x.dim() - 1))
        v = (x - low.reshape(span.shape)) / torch.where(span > 0, span, torch.ones_like(span))
        return torch.where(span > 0, v, torch.zeros_like(v))

    def times(self, x: Tensor) -> Tensor:
        """Spike step per input, of the shape of ``x`` ``[B, ...]`` (long, -1 = silent)."""
        v = self.scaled(x)
        last = self.steps - 1
        if self.code == "linear":
            if self.direction == "early":
                v = 1.0 - v
            steps = torch.floor(v * last).long()
        else:
            # compared at the input's precision: a float32 0.2 is not above theta = 0.2
            precision = x.dtype if x.is_floating_point() else torch.float64
            reaches = v.to(precision) > torch.tensor(self.theta, dtype=precision)
            ratio = v / torch.where(reaches, v - self.theta, torch.ones_like(v))
            t = self.tau * torch.log(torch.where(reaches, ratio, torch.ones_like(v)))
            steps = torch.floor(t / self.dt).clamp(max=last).long()
            if self.direction == "late":
                steps = last - steps
            steps = torch.where(reaches, steps, torch.full_like(steps, -1))
        if self.silent_below is not None:
            steps = torch.where(x <= self.silent_below, torch.full_like(steps, -1), steps)
        return steps

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor | SpikeTimes:
        steps = self.times(x)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        if self.output == "times":
            if x.dim() != 2:
                raise ValueError(f"LatencyEncoder output 'times' takes features [B, F], got inputs of shape "
                                 f"{tuple(x.shape)}; use output: dense for images")
            return SpikeTimes(steps, self.steps)
        t = torch.arange(self.steps, device=steps.device).reshape((-1,) + (1,) * steps.dim())
        return (t == steps).to(dtype)
