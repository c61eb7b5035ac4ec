"""Sparsity objectives and measures (specs/encoders_losses.md): the learned encoder's loss (soft
mutual information and a spike-count term), the spike-sparsity loss with its epoch ramp, and the
sparsity measures the SparsityMetrics callback records per layer.

The encoder loss reads the terms a learned encoder layer reports (network/stal.py), handed to
losses as ``LossInput.penalties``: ``encoder.input`` ``X [N, ...]``, ``encoder.match``
``Z [K, N, ...]`` (one match projection per block), ``encoder.spikes`` ``[N]`` (spikes per input
frame) and ``encoder.psi`` (0-d). The energy-aware loss ``L_task + lambda total_spikes / batch``
is a loss list with SpikeCountLoss (network/losses.py): ``loss: [CrossEntropyLoss, {type:
SpikeCountLoss, weight: lambda}]``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from network.losses import CrossEntropyLoss, Loss, LossInput
from settings import NonNegativeFloat, PositiveFloat, PositiveInt, UnitInterval
from settings.registries import LOSSES

EPS = 1e-12  # probabilities are clipped to this before the logarithm
ENCODER_TERMS = ("encoder.input", "encoder.match", "encoder.spikes", "encoder.psi")


# --- measures -------------------------------------------------------------------------------
def soft_mutual_information(x: Tensor, z: Tensor, dims: Sequence[int] | None = None) -> Tensor:
    """``p_xz log2(p_xz / (p_x p_z))`` with ``p_xz = mean(X Z)``, ``p_x = mean(X)``,
    ``p_z = mean(Z)`` over ``dims`` (default: all), each clipped below at 1e-12."""
    dims = tuple(range(x.dim())) if dims is None else tuple(dims)
    p_xz = (x * z).mean(dim=dims).clamp(min=EPS)
    p_x, p_z = x.mean(dim=dims).clamp(min=EPS), z.mean(dim=dims).clamp(min=EPS)
    return p_xz * torch.log2(p_xz / (p_x * p_z))


def unit_counts(spikes: Tensor) -> Tensor:
    """``s [N]``: each unit's spikes summed over time, averaged over the batch, from ``[T, B, ...]``."""
    return spikes.sum(dim=0).flatten(1).mean(dim=0)


def spike_sparsity(s: Tensor, c: float) -> Tensor:
    """``sum s - c sum s^2 / (sum s + 1e-6)``: few spikes, and those concentrated in few units."""
    total = s.sum()
    return total - c * (s * s).sum() / (total + 1e-6)


def spike_density(spikes: Tensor) -> float:
    """Spikes per entry of ``[T, B, ...]``: ``sum / numel``."""
    return float(spikes.sum()) / max(spikes.numel(), 1)


def binary_sparsity(spikes: Tensor) -> float:
    """The fraction of entries of ``[T, B, ...]`` at or below 0.5 (silent once binarised)."""
    return float((spikes <= 0.5).sum()) / max(spikes.numel(), 1)


def hoyer_sparsity(s: Tensor) -> float:
    """``1 - ||s||_1 / (||s||_2 sqrt(n))`` of per-unit counts ``s [n]``: 0 when every unit fires
    alike, near 1 when one unit fires alone; 1 for a silent layer (nothing fires)."""
    norm2 = float(torch.linalg.vector_norm(s.to(torch.float64)))
    if norm2 == 0.0:
        return 1.0
    return 1.0 - float(s.to(torch.float64).abs().sum()) / (norm2 * s.numel() ** 0.5)


def temporal_sparsity(spikes: Tensor) -> float:
    """Active steps per unit: the steps at which a unit's value is above 0.5, averaged over the
    units and samples of ``[T, B, ...]``."""
    T = spikes.shape[0]
    return float((spikes > 0.5).sum()) / max(spikes.numel() // max(T, 1), 1)


# --- losses ---------------------------------------------------------------------------------
def encoder_terms(batch: LossInput, loss: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``X, Z, spikes, psi`` of the learned encoder's penalty terms; a clear error without them."""
    terms = batch.penalties or {}
    missing = [name for name in ENCODER_TERMS if name not in terms]
    if missing:
        raise ValueError(f"{loss} reads the terms a learned encoder reports ({', '.join(missing)} missing): put a "
                         "STAL, ConvSTAL or ConvSTALPS layer in the model (network/stal.py)")
    return tuple(terms[name] for name in ENCODER_TERMS)  # type: ignore[return-value]


@LOSSES.register
class EncoderLoss(Loss):
    """The learned encoder's loss (STAL): ``L = -mean_k MI(X, Z_k) + count_weight mean_b
    |n_b - count_ratio psi sum(X_b)|`` with the soft mutual information of the input ``X`` and each block's
    match projection ``Z_k`` (:func:`soft_mutual_information`) and ``n_b`` the encoder's spikes for
    input frame ``b``. ``per_channel``: the multi-channel version for images, the MI computed per
    colour channel (axis 1 of ``X``) and averaged. It reads what a STAL / ConvSTAL layer reports
    (network/stal.py); it predicts from the scores like CrossEntropyLoss and asks no number of
    outputs of the model (an encoder stage has no classifier).

    ``count_ratio`` scales the count target to ``count_ratio psi sum(X_b)``: with as many
    encoded units as inputs (STAL, ConvSTAL by default) the encoder's spike density settles near
    ``count_ratio mean(X)``, so ``count_ratio < 1`` asks for a sparser code than the rate code's
    (whose density is ``mean(X)`` at gain 1); 1 is the STAL paper's target.

    Args:
        per_channel: average the MI over the input's channels (multi-channel version).
        count_weight: the weight of the spike-count term.
        count_ratio: the count target's fraction of ``psi sum(X_b)``.
    """

    def __init__(self, per_channel: bool = False, count_weight: NonNegativeFloat = 1.0,
                 count_ratio: PositiveFloat = 1.0):
        super().__init__()
        self.per_channel, self.count_weight, self.count_ratio = per_channel, count_weight, count_ratio

    def mutual_information(self, x: Tensor, z: Tensor) -> Tensor:
        """``[K]`` (``[K, C]`` per channel): the soft MI of ``X [N, ...]`` and each ``Z_k``."""
        x = x.unsqueeze(0).expand_as(z)
        if not self.per_channel:
            return soft_mutual_information(x, z, dims=range(1, z.dim()))
        return soft_mutual_information(x, z, dims=[1, *range(3, z.dim())])

    def count_term(self, x: Tensor, spikes: Tensor, psi: Tensor) -> Tensor:
        """``mean_b |n_b - count_ratio psi sum(X_b)|``."""
        return (spikes - self.count_ratio * psi * x.flatten(1).sum(dim=1)).abs().mean()

    def compute(self, batch: LossInput) -> Tensor:
        x, z, spikes, psi = encoder_terms(batch, type(self).__name__)
        return -self.mutual_information(x, z).mean() + self.count_weight * self.count_term(x, spikes, psi)

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        return None


class SparsityTerm(nn.Module):
    """``L_SS = omega ramp (sum s - c sum s^2 / (sum s + 1e-6))`` per spiking layer, summed, with
    ``s`` the layer's per-unit spike counts (:func:`unit_counts`) and ``ramp = min(epoch /
    n_epochs, 1)``."""

    def __init__(self, omega: float, c: float, n_epochs: int, layers: list[int] | None, owner: str):
        super().__init__()
        self.omega, self.c, self.n_epochs, self.layers, self.owner = omega, c, n_epochs, layers, owner

    def ramp(self, epoch: int) -> float:
        return min(epoch / self.n_epochs, 1.0)

    def forward(self, batch: LossInput) -> Tensor:
        n = len(batch.spikes)
        if self.layers is not None and any(not -n <= i < n for i in self.layers):
            raise ValueError(f"{self.owner}.layers must be positions among the model's {n} spiking layer(s) (0 to {n - 1}, or "
                             f"negative from the end), got {self.layers}")
        spikes = batch.spikes if self.layers is None else [batch.spikes[i] for i in self.layers]
        if not spikes:
            return batch.scores.new_zeros(())
        return self.omega * self.ramp(batch.epoch) * sum(spike_sparsity(unit_counts(s), self.c) for s in spikes)


@LOSSES.register
class SpikeSparsityLoss(Loss):
    """A sparsity penalty that ramps in over the epochs: ``L_SS = omega min(epoch / n_epochs, 1)
    (sum s - c sum s^2 / (sum s + 1e-6))`` for each spiking layer, summed over the layers, with
    ``s`` the layer's spike counts per unit (summed over time, averaged over the batch): fewer
    spikes, and those concentrated in fewer units as ``c`` grows. A regulariser: list it after
    the loss that predicts (``loss: [CrossEntropyLoss, SpikeSparsityLoss]``), or use
    CESpikeSparsityLoss.

    Args:
        omega: the penalty's weight at full ramp.
        c: the weight of the concentration term.
        n_epochs: the epoch at which the ramp reaches 1 (the run's epochs, usually).
        layers: positions among the model's spiking layers (``[0]``: the first, the encoder of a
            STAL model; default: all).
    """

    regularizer = True

    def __init__(self, omega: NonNegativeFloat = 1e-3, c: PositiveFloat = 1.0, n_epochs: PositiveInt = 10,
                 layers: list[int] | None = None):
        super().__init__()
        self.term = SparsityTerm(omega, c, n_epochs, layers, type(self).__name__)

    def compute(self, batch: LossInput) -> Tensor:
        return self.term(batch)


@LOSSES.register
class CESpikeSparsityLoss(CrossEntropyLoss):
    """CE+SS: softmax cross-entropy on the scores plus SpikeSparsityLoss's ramped penalty
    ``omega min(epoch / n_epochs, 1) (sum s - c sum s^2 / (sum s + 1e-6))`` over the spiking
    layers; predicts like CrossEntropyLoss.

    Args:
        omega: the penalty's weight at full ramp.
        c: the weight of the concentration term.
        n_epochs: the epoch at which the ramp reaches 1.
        layers: positions among the model's spiking layers (default: all).
        label_smoothing: as in torch.nn.functional.cross_entropy.
    """

    def __init__(self, omega: NonNegativeFloat = 1e-3, c: PositiveFloat = 1.0, n_epochs: PositiveInt = 10,
                 layers: list[int] | None = None, label_smoothing: UnitInterval = 0.0):
        super().__init__(label_smoothing)
        self.term = SparsityTerm(omega, c, n_epochs, layers, type(self).__name__)

    def compute(self, batch: LossInput) -> Tensor:
        return super().compute(batch) + self.term(batch)
