"""Rate coding: spike probability per step proportional to the input."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from encoders.base import Encoder, check_steps, n_steps
from settings import PositiveFloat
from settings.registries import ENCODERS


@ENCODERS.register
class RateEncoder(Encoder):
    """Bernoulli spikes with ``p = gain * x / x_max`` per step (``max_rate_hz`` set: ``p = rate * dt / 1000``
    at ``x = x_max``), regularly spaced spikes at the same rate (``mode: regular``), or a Poisson
    process of rate ``max_rate_hz * x / x_max`` (``mode: poisson``): a step spikes when at least
    one event falls into it, ``p = 1 - exp(-rate * dt / 1000)``. Any input shape: ``[B, ...]`` ->
    ``[L, B, ...]``.

    Args:
        T: duration of a sample (ms): ``T / dt`` time steps.
        x_max: the input value that gets the maximal rate.
        gain: spike probability per step at ``x_max`` (ignored when ``max_rate_hz`` is set).
        max_rate_hz: firing rate at ``x_max`` in Hz, with ``dt`` in ms (``poisson`` needs it).
        mode: ``bernoulli`` (random, seeded), ``regular`` (deterministic, evenly spaced) or
            ``poisson`` (random, seeded).
        dt: time step (ms).
    """

    def __init__(self, T: PositiveFloat = 100.0, x_max: PositiveFloat = 1.0, gain: PositiveFloat = 1.0,
                 max_rate_hz: PositiveFloat | None = None, mode: Literal["bernoulli", "regular", "poisson"] = "bernoulli",
                 dt: PositiveFloat = 1.0):
        self.T, self.x_max, self.gain, self.max_rate_hz, self.mode, self.dt = T, x_max, gain, max_rate_hz, mode, dt
        self.steps = n_steps(T, dt)
        self.stochastic = mode != "regular"

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        issues = check_steps(params)
        if params["mode"] == "poisson":
            if params["max_rate_hz"] is None:
                issues.append(("max_rate_hz", "must be set for mode poisson (the rate at x_max, in Hz), got null"))
            return issues
        top = params["max_rate_hz"] * params["dt"] / 1000 if params["max_rate_hz"] is not None else params["gain"]
        if top > 1:
            issues.append(("max_rate_hz" if params["max_rate_hz"] is not None else "gain",
                           f"gives a spike probability per step of {top:g} > 1; lower it or dt"))
        return issues

    def probability(self, x: Tensor) -> Tensor:
        """The spike probability per step, of the shape of ``x``."""
        v = (x.to(torch.float32) / self.x_max).clamp(0.0, 1.0)
        if self.mode == "poisson":
            return -torch.expm1(-v * (self.max_rate_hz * self.dt / 1000))
        top = self.max_rate_hz * self.dt / 1000 if self.max_rate_hz is not None else self.gain
        return v * top

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        p = self.probability(x)  # [B, ...]
        if self.stochastic:
            u = torch.rand((self.steps,) + tuple(p.shape), generator=generator, device=p.device)
            return (u < p).to(torch.float32)
        steps = torch.arange(1, self.steps + 1, dtype=torch.float32, device=p.device).reshape(-1, *([1] * p.dim()))
        counts = torch.floor(steps * p + 1e-6)
        return (counts - torch.cat([torch.zeros_like(counts[:1]), counts[:-1]])).clamp(0, 1)
