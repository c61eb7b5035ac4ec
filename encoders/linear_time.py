"""Linear time coding for first-spike-time networks: one spike per input at a continuous time."""
from __future__ import annotations

import torch
from torch import Tensor

from encoders.base import Encoder
from network.events import ContinuousSpikes
from settings import NonNegativeFloat
from settings.registries import ENCODERS


@ENCODERS.register
class LinearTimeEncoder(Encoder):
    """One spike per input at ``t = t_early + v (t_late - t_early)`` (units of tau_s), with the
    input scaled to ``v = (x - x_min) / (x_max - x_min)`` after clipping it into [x_min, x_max];
    ``invert: true`` uses ``1 - v`` (large values spike early: the MNIST time code, a pixel of
    value 1 at t_early, a black pixel at t_late). Gives :class:`ContinuousSpikes` ``[B, F]``.

    Args:
        t_early: time of the smallest input (``x_min``; the largest with ``invert``), in tau_s.
        t_late: time of the largest input (``x_max``; the smallest with ``invert``), in tau_s.
        x_min: the input value mapped to ``v = 0``; smaller values are clipped to it.
        x_max: the input value mapped to ``v = 1``; larger values are clipped to it.
        invert: map ``1 - v`` instead of ``v``.
    """

    def __init__(self, t_early: NonNegativeFloat = 0.15, t_late: NonNegativeFloat = 2.0, x_min: float = 0.0,
                 x_max: float = 1.0, invert: bool = False):
        self.t_early, self.t_late, self.x_min, self.x_max, self.invert = t_early, t_late, x_min, x_max, invert

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        problems = []
        if params["t_late"] <= params["t_early"]:
            problems.append(("t_late", f"must be > t_early = {params['t_early']:g}, got {params['t_late']:g}"))
        if params["x_max"] <= params["x_min"]:
            problems.append(("x_max", f"must be > x_min = {params['x_min']:g}, got {params['x_max']:g}"))
        return problems

    def times(self, x: Tensor) -> Tensor:
        """Spike time per input ``[B, F]``, computed in float64 and returned in ``x``'s floating
        type (float32 for integer inputs)."""
        v = (x.to(torch.float64).clamp(self.x_min, self.x_max) - self.x_min) / (self.x_max - self.x_min)
        if self.invert:
            v = 1.0 - v
        t = self.t_early + v * (self.t_late - self.t_early)
        return t.to(x.dtype if x.is_floating_point() else torch.float32)

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> ContinuousSpikes:
        return ContinuousSpikes(self.times(x))
