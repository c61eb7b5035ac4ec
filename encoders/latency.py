"""Latency (time-to-first-spike) coding: one spike per input."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from encoders.base import Encoder, check_steps, n_steps
from network.events import SpikeTimes
from settings import PositiveFloat
from settings.registries import ENCODERS


@ENCODERS.register
class LatencyEncoder(Encoder):
    """One spike per input at step ``t_i = floor(x_i / x_max * (L - 1))`` with ``L = T / dt`` steps
    (``direction: late``: larger values spike later) or ``floor((1 - x_i / x_max) * (L - 1))``
    (``early``: larger values first).

    Args:
        T: duration of a sample (ms).
        dt: time step (ms).
        x_max: the input value mapped to the last (first) step; values are clipped to [0, x_max].
        direction: ``late`` or ``early``.
        silent_below: inputs at or below this value emit no spike (``null``: none are silent).
        output: ``times`` (event form, consumed event by event) or ``dense`` (``[L, B, F]`` raster).
    """

    def __init__(self, T: PositiveFloat = 100.0, dt: PositiveFloat = 1.0, x_max: PositiveFloat = 1.0,
                 direction: Literal["late", "early"] = "late", silent_below: float | None = None,
                 output: Literal["times", "dense"] = "times"):
        self.T, self.dt, self.steps, self.x_max, self.direction = T, dt, n_steps(T, dt), x_max, direction
        self.silent_below, self.output = silent_below, output

    check_params = staticmethod(check_steps)

    def times(self, x: Tensor) -> Tensor:
        """Spike step per input ``[B, F]`` (long, -1 = silent)."""
        v = (x.to(torch.float64) / self.x_max).clamp(0.0, 1.0)
        if self.direction == "early":
            v = 1.0 - v
        steps = torch.floor(v * (self.steps - 1)).long()
        if self.silent_below is not None:
            steps = torch.where(x <= self.silent_below, torch.full_like(steps, -1), steps)
        return steps

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor | SpikeTimes:
        events = SpikeTimes(self.times(x), self.steps)
        return events if self.output == "times" else events.to_dense(x.dtype if x.is_floating_point() else torch.float32)
