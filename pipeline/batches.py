"""What one batch carries through the loop: encoded splits, the loss's input record, and the
per-label accuracy counts (per sample, or per step under a mask)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from network.events import Activity, select
from network.losses import LossInput
from network.network import NetworkOutput

Inputs = Activity


@dataclass
class EncodedSplit:
    """A split's encoded inputs (``[T, P, F]`` or events), targets (``[P]``, or ``[P, T]`` one
    class per step) and the mask of steps that count (``[P, T]`` bool, or None: all). ``dtype``:
    the type a batch of compactly stored inputs (uint8 spike counts) is cast to; None: as stored."""

    inputs: Inputs
    targets: Tensor
    mask: Tensor | None = None
    dtype: torch.dtype | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index: Tensor) -> tuple[Inputs, Tensor, Tensor | None]:
        x = select(self.inputs, index)
        if self.dtype is not None:
            x = x.to(self.dtype)
        return x, self.targets[index], None if self.mask is None else self.mask[index]


@dataclass(frozen=True)
class BatchResult:
    """What the callbacks' batch hooks see: the batch's loss (before the update), the model's
    output and the loss's input record."""

    loss: float
    output: NetworkOutput
    record: LossInput


def loss_input(output: NetworkOutput, targets: Tensor, mask: Tensor | None, epoch: int,
               scores: Tensor | None = None) -> LossInput:
    """The record a loss sees for ``output``; ``scores`` replaces the readout's (a graph leaf for
    local learning rules)."""
    spikes = tuple(trace.out for trace in output.traces if trace.spiking and isinstance(trace.out, Tensor))
    return LossInput(output.scores if scores is None else scores, targets, mask, output.readout.trace, spikes, epoch,
                     output.readout.times, output.penalties())


class LabelCounts:
    """Correct and total predictions per label, over samples (class targets ``[B]``) or over the
    steps that count (per-step targets ``[B, T]`` with a mask; targets < 0 never count)."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.hits = torch.zeros(n_classes, dtype=torch.long)
        self.counts = torch.zeros(n_classes, dtype=torch.long)

    def add(self, predicted: Tensor, targets: Tensor, mask: Tensor | None = None) -> None:
        keep = targets >= 0
        if mask is not None:
            keep &= mask.to(torch.bool)
        good = ((predicted == targets) & keep).reshape(-1).cpu()
        labels, keep = targets.reshape(-1).cpu(), keep.reshape(-1).cpu()
        self.hits += torch.bincount(labels[good], minlength=self.n_classes)[: self.n_classes]
        self.counts += torch.bincount(labels[keep], minlength=self.n_classes)[: self.n_classes]

    @property
    def correct(self) -> int:
        return int(self.hits.sum())

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    def per_label(self) -> dict[int, float]:
        """Accuracy per label (NaN for a label with nothing to count)."""
        return {k: float(self.hits[k]) / float(self.counts[k]) if self.counts[k] else float("nan")
                for k in range(self.n_classes)}
