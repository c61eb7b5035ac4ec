"""WeightBumping: keep first-spike neurons alive (specs/first_spike.md, "weight bumping").

After each training batch, from the first first-spike layer on: if the fraction of silent
(sample, neuron) pairs of a layer exceeds its ``max_missing``, ``bump`` is added to that layer's
weights (the first offending layer only; ``targeted``: only the weights into neurons that were
silent for some sample of the batch). ``doubling``: while the same layer is bumped batch after
batch, the bump doubles each time; it starts again from ``bump`` once a batch needs none.

Every bump is logged: ``bumps/<layer>`` (number of bumps of layer ``layers.<k>`` in the epoch),
``bumps/total`` and ``bumps/size`` (the sum of the values added, over the epoch).
"""
from __future__ import annotations

import torch

from network.events import ContinuousSpikes
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import NonNegativeFloat, PositiveFloat
from settings.registries import CALLBACKS


@CALLBACKS.register
class WeightBumping(Callback):
    """Add ``bump`` to the weights of the first layer with too many silent neurons.

    Args:
        max_missing: the largest allowed fraction of silent (sample, neuron) pairs, one per
            first-spike layer in order (Yin-Yang: [0.3, 0.0]); a single number for all.
        bump: the value added to each weight.
        targeted: bump only the weights into neurons that missed a spike in the batch.
        doubling: double the bump while the same layer keeps being bumped.
    """

    order = 5

    def __init__(self, max_missing: list[NonNegativeFloat] | NonNegativeFloat = 0.0, bump: PositiveFloat = 0.0005,
                 targeted: bool = False, doubling: bool = False):
        self.max_missing, self.bump, self.targeted, self.doubling = max_missing, bump, targeted, doubling
        self.previous: int | None = None  # the layer bumped by the previous batch
        self.current = bump
        self.counts: dict[str, float] = {}

    def _limit(self, k: int) -> float:
        if isinstance(self.max_missing, (int, float)):
            return float(self.max_missing)
        if k >= len(self.max_missing):
            raise ValueError(f"WeightBumping.max_missing lists {len(self.max_missing)} value(s) but the "
                             f"model has more first-spike layers; give one per layer")
        return float(self.max_missing[k])

    def on_epoch_start(self, state: FitState, epoch: int) -> None:
        self.counts = {"bumps/total": 0.0, "bumps/size": 0.0}
        for key, value in self.counts.items():
            state.log_metric(key, value)

    def on_batch_end(self, state: FitState, batch: int, result) -> None:
        layers = [(i, trace) for i, trace in enumerate(result.output.traces) if isinstance(trace.out, ContinuousSpikes)]
        for k, (i, trace) in enumerate(layers):
            silent = ~trace.out.fired()  # [B, N]
            if float(silent.float().mean()) <= self._limit(k):
                continue
            self.current = self.current * 2 if self.doubling and self.previous == i else self.bump
            weight = state.model.layers[i].weight
            with torch.no_grad():
                if self.targeted:
                    rows = silent.any(dim=0)
                    weight[rows] += self.current
                else:
                    weight += self.current
            self.previous = i
            name = f"bumps/layers.{i}"
            self.counts[name] = self.counts.get(name, 0.0) + 1
            self.counts["bumps/total"] = self.counts.get("bumps/total", 0.0) + 1
            self.counts["bumps/size"] = self.counts.get("bumps/size", 0.0) + self.current
            for key, value in self.counts.items():
                state.log_metric(key, value)
            return
        self.previous, self.current = None, self.bump

    def state_dict(self) -> dict:
        """A doubling in progress (nothing while no layer is being bumped)."""
        return {} if self.previous is None else {"previous": self.previous, "current": self.current}

    def load_state_dict(self, state: dict) -> None:
        self.previous, self.current = state.get("previous"), state.get("current", self.bump)

    def __repr__(self) -> str:
        return f"WeightBumping(max_missing={self.max_missing}, bump={self.bump})"
