"""Encoders turn feature vectors ``[B, F]`` into spikes ``[T, B, F']`` (or spike times)."""
from __future__ import annotations

import torch
from torch import Tensor

from network.events import SpikeTimes
from settings.registries import ENCODERS


@ENCODERS.set_base
class Encoder:
    """Base class.

    ``encode(x [B, F], generator) -> [T, B, F'] | SpikeTimes``; ``out_features(F) -> F'``.
    ``stochastic`` encoders draw from ``generator`` (seeded from the run's seed).
    """

    stochastic: bool = False

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor | SpikeTimes:
        raise NotImplementedError

    def out_features(self, in_features: int) -> int:
        return in_features

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"
