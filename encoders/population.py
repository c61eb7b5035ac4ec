"""Population coding: each input drives a population of neurons with Gaussian receptive fields."""
from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import Tensor

from encoders.base import Encoder, check_steps, n_steps
from settings import Gt, PositiveFloat, UnitInterval
from settings.registries import ENCODERS


@ENCODERS.register
class PopulationEncoder(Encoder):
    """``neurons`` neurons per input with Gaussian receptive fields over ``[x_min, x_max]``:
    neuron ``j`` has its centre at ``mu_j = x_min + j (x_max - x_min) / (neurons - 1)`` and
    responds ``r_j = exp(-(x - mu_j)^2 / (2 sigma^2))`` with ``sigma = width (x_max - x_min) /
    (neurons - 1)`` (after Bohte et al. 2002; the default width
    is their beta = 1.5). The responses become spikes over ``L = T / dt`` steps:
    ``code: latency`` gives one spike at step ``floor((1 - r_j) (L - 1))`` (the best-tuned neuron
    first), none where ``r_j < min_response``; ``code: rate`` gives Bernoulli spikes with
    probability ``gain r_j`` per step (seeded).

    The first axis after the batch grows ``neurons``-fold, input ``i`` giving channels
    ``i * neurons + j``: ``[B, F] -> [L, B, F * neurons]``, ``[B, C, H, W] -> [L, B, C * neurons, H, W]``.

    Args:
        neurons: neurons per input (at least 2).
        x_min: the input value at the first neuron's centre.
        x_max: the input value at the last neuron's centre.
        width: the receptive fields' standard deviation, in centre spacings.
        code: ``latency`` (one spike per neuron) or ``rate`` (Bernoulli).
        min_response: ``latency``: neurons responding less stay silent.
        gain: ``rate``: the spike probability per step at the full response.
        T: duration of a sample (ms).
        dt: time step (ms).
    """

    def __init__(self, neurons: Annotated[int, Gt(1)] = 8, x_min: float = 0.0, x_max: float = 1.0,
                 width: PositiveFloat = 1.0 / 1.5, code: Literal["latency", "rate"] = "latency",
                 min_response: UnitInterval = 0.1, gain: UnitInterval = 1.0, T: PositiveFloat = 20.0,
                 dt: PositiveFloat = 1.0):
        self.neurons, self.x_min, self.x_max, self.width = neurons, x_min, x_max, width
        self.code, self.min_response, self.gain = code, min_response, gain
        self.T, self.dt, self.steps = T, dt, n_steps(T, dt)
        self.stochastic = code == "rate"

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        issues = check_steps(params)
        if not params["x_max"] > params["x_min"]:
            issues.append(("x_max", f"must be above x_min ({params['x_min']:g}), got {params['x_max']:g}"))
        return issues

    def out_features(self, in_features: int) -> int:
        return in_features * self.neurons

    def centres(self) -> Tensor:
        """``[neurons]`` (float64): the receptive fields' centres."""
        return torch.linspace(self.x_min, self.x_max, self.neurons, dtype=torch.float64)

    def responses(self, x: Tensor) -> Tensor:
        """``[B, F, ...]`` -> ``[B, F * neurons, ...]`` (float64): each neuron's response in [0, 1]."""
        sigma = self.width * (self.x_max - self.x_min) / (self.neurons - 1)
        shape = (1, 1, self.neurons) + (1,) * (x.dim() - 2)
        mu = self.centres().to(x.device).reshape(shape)
        r = torch.exp(-(x.to(torch.float64).unsqueeze(2) - mu) ** 2 / (2 * sigma ** 2))
        return r.flatten(1, 2)

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Inputs ``[B, F, ...]`` -> spikes ``[L, B, F * neurons, ...]`` (float32)."""
        if x.dim() < 2:
            raise ValueError(f"PopulationEncoder encodes a batch [B, F, ...], got a tensor of shape {tuple(x.shape)}")
        r = self.responses(x)
        if self.code == "rate":
            u = torch.rand((self.steps,) + tuple(r.shape), generator=generator, device=r.device)
            return (u < (self.gain * r).to(torch.float32)).to(torch.float32)
        steps = torch.floor((1.0 - r) * (self.steps - 1) + 1e-9).long()
        fired = r >= self.min_response
        t = torch.arange(self.steps, device=r.device).reshape((-1,) + (1,) * r.dim())
        return ((t == steps) & fired).to(torch.float32)

