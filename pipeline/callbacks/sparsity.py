"""SparsityMetrics: how sparse each spiking layer (and the encoder's spikes) is, every epoch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from network.sparsity import hoyer_sparsity
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings import PositiveInt
from settings.metrics import INPUT_SOURCE, SPARSITY_MEASURES, SPIKE_DENSITY, sparsity_metric
from settings.registries import CALLBACKS


@dataclass
class Tally:
    """Sums over the batches of one source of spikes ``[T, B, ...]``."""

    total: float = 0.0  # sum of the values
    entries: int = 0  # T x B x units
    silent: int = 0  # entries <= 0.5
    active: int = 0  # entries > 0.5
    samples: int = 0
    unit_totals: Tensor | None = field(default=None, repr=False)  # [units]: summed over time and batch

    def add(self, spikes: Tensor) -> None:
        spikes = spikes.detach()
        self.total += float(spikes.sum())
        self.entries += spikes.numel()
        self.silent += int((spikes <= 0.5).sum())
        self.active += int((spikes > 0.5).sum())
        self.samples += spikes.shape[1]
        units = spikes.sum(dim=0).flatten(1).sum(dim=0).to(torch.float64).cpu()
        self.unit_totals = units if self.unit_totals is None else self.unit_totals + units

    def measures(self) -> dict[str, float]:
        """Spike density, binary sparsity, Hoyer sparsity of the per-unit counts (averaged over
        the samples) and temporal sparsity (active steps per unit and sample)."""
        density, binary, hoyer, temporal = SPARSITY_MEASURES
        units = self.unit_totals.numel()
        return {density: self.total / self.entries, binary: self.silent / self.entries,
                hoyer: hoyer_sparsity(self.unit_totals / self.samples), temporal: self.active / (self.samples * units)}


@CALLBACKS.register
class SparsityMetrics(Callback):
    """Records, every epoch (0 too), the sparsity of the model's activity on one split, in eval
    mode (a STAL encoder's spikes binarised): for every spiking layer ``i`` of the model's
    output (its traces; a learned encoder in front of a classifier is ``layer_0``) and for the
    spikes the pipeline's encoder made (``input``), ``spike_density/<source>`` (spikes per
    entry of ``[T, B, ...]``), ``binary_sparsity/<source>`` (the fraction of entries <= 0.5),
    ``hoyer_sparsity/<source>`` (``1 - ||s||_1 / (||s||_2 sqrt(n))`` of the per-unit counts
    ``s``) and ``temporal_sparsity/<source>`` (active steps per unit and sample); and
    ``spike_density``: spikes per entry over all of them together. The formulas are in
    network/sparsity.py.

    It runs the model over the split once more after each epoch's evaluation, and puts its
    metrics into the epoch's before MetricsTracker records them (order -10).

    Args:
        split: the split measured (default: val, else train when the run has no validation split).
        max_samples: measure only the split's first samples (default: all).
    """

    order = -10

    def __init__(self, split: Literal["train", "val", "test"] | None = None, max_samples: PositiveInt | None = None):
        self.split, self.max_samples = split, max_samples

    def chosen_split(self, state: FitState) -> str:
        encoded = state.extra["encoded"]
        if self.split is not None:
            if not len(encoded[self.split]):
                have = [name for name, split in encoded.items() if len(split)]
                raise ValueError(f"SparsityMetrics.split is {self.split!r}, which has no samples in this run; "
                                 f"allowed: {', '.join(have)}")
            return self.split
        return "val" if len(encoded["val"]) else "train"

    @torch.no_grad()
    def measure(self, state: FitState) -> dict[str, float]:
        split = state.extra["encoded"][self.chosen_split(state)]
        n = len(split) if self.max_samples is None else min(self.max_samples, len(split))
        pipeline, model = state.pipeline, state.model
        tallies: dict[str, Tally] = {}
        training = model.training
        model.eval()
        try:
            for index in torch.arange(n, device=pipeline.device).split(pipeline.eval_batch_size):
                x, _, _ = split.batch(index)
                if pipeline.encoder is not None:
                    dense = x.to_dense() if hasattr(x, "to_dense") else x
                    if isinstance(dense, Tensor):
                        tallies.setdefault(INPUT_SOURCE, Tally()).add(dense)
                for i, trace in enumerate(model(x).traces):
                    if trace.spiking and isinstance(trace.out, Tensor):
                        tallies.setdefault(f"layer_{i}", Tally()).add(trace.out)
        finally:
            model.train(training)
        metrics = {sparsity_metric(name, source): value
                   for source, tally in tallies.items() for name, value in tally.measures().items()}
        if tallies:
            metrics[SPIKE_DENSITY] = sum(t.total for t in tallies.values()) / sum(t.entries for t in tallies.values())
        return metrics

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        metrics.update(self.measure(state))

    def __repr__(self) -> str:
        return f"SparsityMetrics(split={self.split!r}, max_samples={self.max_samples})"
