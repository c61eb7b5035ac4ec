"""Losses on output spike times (specs/first_spike.md), each with its class-selection rule.

They read ``LossInput.times`` ``[B, C]`` (tau_s units, +inf: no spike), which ``SpikeTimeReadout``
gives. An output that never fires is never the predicted class: a sample whose outputs are all
silent counts as wrong (prediction -1). A loss entry that is infinite (the label neuron silent)
is replaced by ``missing_loss`` and gives no gradient; weight bumping wakes such neurons up.
"""
from __future__ import annotations

import torch
from torch import Tensor

from network.losses import Loss, LossInput, as_input
from settings import NonNegativeFloat, PositiveFloat
from settings.registries import LOSSES


def output_times(batch: LossInput, loss: str) -> Tensor:
    if batch.times is None:
        raise ValueError(f"{loss} needs output spike times: end the model with FirstSpikeLIF layers "
                         f"and readout SpikeTimeReadout")
    return batch.times


def earliest(times: Tensor) -> Tensor:
    """The class of the earliest output spike ``[B]``; -1 where no output fired."""
    first, index = times.min(dim=-1)
    return torch.where(torch.isfinite(first), index, torch.full_like(index, -1))


def label_times(times: Tensor, targets: Tensor) -> Tensor:
    return times.gather(1, targets.unsqueeze(1)).squeeze(1)


def early_output_term(t_label: Tensor, alpha: float, beta: float) -> Tensor:
    """``alpha (exp(t_label / beta) - 1)`` per sample; 0 for a silent label neuron."""
    fired = torch.isfinite(t_label)
    safe = torch.where(fired, t_label, torch.zeros_like(t_label))
    return torch.where(fired, alpha * (torch.exp(safe / beta) - 1.0), torch.zeros_like(safe))


def finite_mean(per_sample: Tensor, missing: float) -> Tensor:
    """The batch mean with non-finite entries replaced by the constant ``missing``."""
    finite = torch.isfinite(per_sample)
    return torch.where(finite, per_sample, torch.full_like(per_sample, missing)).mean()


@LOSSES.register
class TTFSLoss(Loss):
    """Fast&Deep's time-to-first-spike loss: cross-entropy of ``softmax(-t / xi)`` plus the
    early-output term ``alpha (exp(t_label / beta) - 1)``; class = earliest output spike.

    Args:
        xi: softmax temperature (tau_s).
        alpha: weight of the early-output term.
        beta: time scale of the early-output term (tau_s).
        missing_loss: the loss of a sample whose label neuron did not fire.
    """

    def __init__(self, xi: PositiveFloat = 0.2, alpha: NonNegativeFloat = 0.005, beta: PositiveFloat = 1.0,
                 missing_loss: PositiveFloat = 100.0):
        super().__init__()
        self.xi, self.alpha, self.beta, self.missing_loss = xi, alpha, beta, missing_loss

    def compute(self, batch: LossInput) -> Tensor:
        times = output_times(batch, "TTFSLoss")
        log_p = torch.log_softmax(-times / self.xi, dim=-1)
        nll = -log_p.gather(1, batch.targets.unsqueeze(1)).squeeze(1)
        per_sample = nll + early_output_term(label_times(times, batch.targets), self.alpha, self.beta)
        return finite_mean(per_sample, self.missing_loss)

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        return earliest(output_times(as_input(batch), "TTFSLoss"))


@LOSSES.register
class ShiftInvariantMSE(Loss):
    """DelGrad's loss: ``1/2 sum_n ((t_n - t_label) - Delta (1 - [n = label]))^2``, the label
    output ``Delta`` earlier than every other, wherever they are in time; class = earliest spike.

    Args:
        delta: the wanted lead of the label output (tau_s).
        missing_loss: the loss of a sample with a silent output.
    """

    def __init__(self, delta: PositiveFloat = 0.2, missing_loss: PositiveFloat = 100.0):
        super().__init__()
        self.delta, self.missing_loss = delta, missing_loss

    def compute(self, batch: LossInput) -> Tensor:
        times = output_times(batch, "ShiftInvariantMSE")
        lead = self.delta * (1.0 - torch.nn.functional.one_hot(batch.targets, times.shape[1]).to(times.dtype))
        per_sample = 0.5 * ((times - label_times(times, batch.targets).unsqueeze(1)) - lead).pow(2).sum(1)
        return finite_mean(per_sample, self.missing_loss)

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        return earliest(output_times(as_input(batch), "ShiftInvariantMSE"))


@LOSSES.register
class TargetTimeMSE(Loss):
    """Squared error to target times: ``t_correct`` for the label output, ``t_wrong`` for the
    others (``1/2 sum_n (t_n - target_n)^2``); class = the output closest to ``t_correct``.

    Args:
        t_correct: the label output's target time (tau_s).
        t_wrong: the other outputs' target time (tau_s).
        missing_loss: the loss of a sample with a silent output.
    """

    def __init__(self, t_correct: NonNegativeFloat = 1.0, t_wrong: NonNegativeFloat = 2.0,
                 missing_loss: PositiveFloat = 100.0):
        super().__init__()
        self.t_correct, self.t_wrong, self.missing_loss = t_correct, t_wrong, missing_loss

    def compute(self, batch: LossInput) -> Tensor:
        times = output_times(batch, "TargetTimeMSE")
        hot = torch.nn.functional.one_hot(batch.targets, times.shape[1]).to(times.dtype)
        target = self.t_wrong + (self.t_correct - self.t_wrong) * hot
        return finite_mean(0.5 * (times - target).pow(2).sum(1), self.missing_loss)

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        times = output_times(as_input(batch), "TargetTimeMSE")
        distance = (times - self.t_correct).abs()
        best, index = distance.min(dim=-1)
        return torch.where(torch.isfinite(best), index, torch.full_like(index, -1))


@LOSSES.register
class EarlyOutputLoss(Loss):
    """A regulariser pulling the label output early: ``alpha (exp(t_label / beta) - 1)``
    (TTFSLoss has it built in; list this one after another loss).

    Args:
        alpha: weight.
        beta: time scale (tau_s).
    """

    regularizer = True

    def __init__(self, alpha: NonNegativeFloat = 0.005, beta: PositiveFloat = 1.0):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def compute(self, batch: LossInput) -> Tensor:
        t_label = label_times(output_times(batch, "EarlyOutputLoss"), batch.targets)
        return early_output_term(t_label, self.alpha, self.beta).mean()


@LOSSES.register
class DelayL2(Loss):
    """``weight * sum d^2`` over every delay of the model (the layers' ``delay_l2`` penalty)."""

    regularizer = True

    def __init__(self, weight: NonNegativeFloat = 1e-4):
        super().__init__()
        self.weight = weight

    def compute(self, batch: LossInput) -> Tensor:
        term = (batch.penalties or {}).get("delay_l2")
        return batch.scores.new_zeros(()) if term is None else self.weight * term
