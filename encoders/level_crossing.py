"""Level-crossing (delta) coding: a spike where a signal changes by at least a level."""
from __future__ import annotations

import torch
from torch import Tensor

from encoders.base import Encoder
from settings import PositiveFloat
from settings.registries import ENCODERS


@ENCODERS.register
class LevelCrossingEncoder(Encoder):
    """Two channels per input: an up-spike at step ``t`` where ``x_t - x_{t-1} >= level``, a
    down-spike where ``x_t - x_{t-1} <= -level`` (the ECG task's encoding uses ``level = 0.3``).

    A sequence data set's samples ``[P, T, ...]`` are encoded step by step (``[T, P, ...]`` in,
    ``[T, P, 2 x ...]`` out); a feature vector ``[B, ...]`` is a one-step signal. Before the first
    step the signal is at ``baseline`` (``null``: at its first value, so step 0 never spikes).
    The first axis after the batch doubles, input ``i`` giving channels ``2i`` (up) and
    ``2i + 1`` (down): ``[T, B, F] -> [T, B, 2F]``, ``[T, B, C, H, W] -> [T, B, 2C, H, W]``.

    Args:
        level: the change that makes a spike (in the signal's units).
        baseline: the signal's value before the first step (``null``: its first value).
    """

    takes_sequences = True

    def __init__(self, level: PositiveFloat = 0.3, baseline: float | None = 0.0):
        self.level, self.baseline = level, baseline

    def out_features(self, in_features: int) -> int:
        return 2 * in_features

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Features ``[B, ...]`` as a one-step signal: ``[1, B, 2 x ...]``."""
        return self.encode_sequence(x.unsqueeze(0), generator)

    def encode_sequence(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A time-major signal ``[T, B, ...]`` -> spikes ``[T, B, 2 x ...]`` (float32)."""
        x = x.to(torch.float32)
        before = x[:1] if self.baseline is None else torch.full_like(x[:1], self.baseline)
        delta = x - torch.cat([before, x[:-1]])
        # a float32 difference of 0.3 can land a rounding error below 0.3: compare with a tolerance
        tolerance = 1e-6 * max(1.0, self.level)
        up = (delta >= self.level - tolerance).to(torch.float32)
        down = (delta <= -self.level + tolerance).to(torch.float32)
        spikes = torch.stack([up, down], dim=3)  # [T, B, F, 2, ...]
        return spikes.flatten(2, 3)
