"""Encoders turn feature vectors ``[B, F]`` into spikes ``[L, B, F']`` (or spike times), with
``L = T / dt`` time steps for a sample of duration ``T`` ms."""
from __future__ import annotations

import torch
from torch import Tensor

from network.events import SpikeTimes
from settings.registries import ENCODERS


def n_steps(T: float, dt: float) -> int:
    """Time steps in a sample of ``T`` ms at ``dt`` ms per step."""
    return max(1, round(T / dt))


def check_steps(params: dict) -> list[tuple[str, str]]:
    """``T`` must be a whole number of ``dt`` steps (validation hook)."""
    steps = params["T"] / params["dt"]
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        return [("T", f"{params['T']:g} ms is not a whole number of dt = {params['dt']:g} ms steps "
                      f"(T/dt = {steps:g}); make T a multiple of dt")]
    return []


@ENCODERS.set_base
class Encoder:
    """Base class.

    ``encode(x [B, F], generator) -> [L, B, F'] | SpikeTimes``; ``out_features(F) -> F'``.
    ``stochastic`` encoders draw from ``generator`` (seeded from the run's seed). Images
    ``[B, C, H, W]`` keep their trailing shape (``[L, B, C', H, W]``). An encoder that
    ``takes_sequences`` also encodes a sequence data set's samples, time-major:
    ``encode_sequence(x [T, B, F], generator) -> [T, B, F']``.
    """

    stochastic: bool = False
    takes_sequences: bool = False

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor | SpikeTimes:
        raise NotImplementedError

    def encode_sequence(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} encodes features, not sequences")

    def out_features(self, in_features: int) -> int:
        return in_features

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"
