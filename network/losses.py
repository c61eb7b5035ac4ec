"""Losses: each sees the whole output of a batch (one ``LossInput`` record) and defines how that
output becomes predicted classes (``predict``), which the accuracy metrics use.

A loss listed in YAML alone trains the model; a list adds its terms up
(``loss: [SequenceNLL, {type: SpikeCountLoss, weight: 1.0e-5}]``): the first term that is not a
regulariser predicts the classes and fixes which targets the data must give (``target_kind``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from settings import NonNegativeFloat, NonNegativeInt, UnitInterval
from settings.registries import LOSSES

TargetKind = Literal["class", "per_step"]


@dataclass
class LossInput:
    """What a loss may look at for one batch.

    ``scores`` ``[B, C]``: the readout's score per sample; ``step_scores`` ``[T, B, C]``: the
    readout's score at every step (a readout with a trace over time; else None); ``targets``
    ``[B]`` class indices, or ``[B, T]`` one class per step; ``mask`` ``[B, T]`` (bool): the steps
    that count (None: all); ``spikes``: every spiking layer's spikes ``[T, B, N]``; ``epoch``: the
    epoch being trained (0 while evaluating the untrained model); ``times`` ``[B, C]``: the output
    spike times of a first-spike readout (``inf``: no spike; else None); ``penalties``: named
    differentiable terms the model's layers report (a delay layer's squared delays), which
    regularisers read.
    """

    scores: Tensor
    targets: Tensor
    mask: Tensor | None = None
    step_scores: Tensor | None = None
    spikes: tuple[Tensor, ...] = ()
    epoch: int = 0
    times: Tensor | None = None
    penalties: dict[str, Tensor] | None = None


def as_input(batch: LossInput | Tensor, targets: Tensor | None = None) -> LossInput:
    """``loss(scores, targets)`` is shorthand for ``loss(LossInput(scores, targets))``."""
    return batch if isinstance(batch, LossInput) else LossInput(batch, targets)


@LOSSES.set_base
class Loss(nn.Module):
    """``forward(LossInput) -> scalar``; ``predict(LossInput) -> [B]`` (or ``[B, T]`` per step).

    ``regularizer``: a term that only adds a penalty (it predicts nothing); ``needs_step_scores``:
    the loss reads ``step_scores``, so the readout must keep a trace over time.
    """

    regularizer: bool = False
    needs_step_scores: bool = False

    def target_kind(self) -> TargetKind:
        """The targets this loss trains on: one class per sample, or one per step."""
        return "class"

    def forward(self, batch: LossInput | Tensor, targets: Tensor | None = None) -> Tensor:
        return self.compute(as_input(batch, targets))

    def compute(self, batch: LossInput) -> Tensor:
        raise NotImplementedError

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        return as_input(batch).scores.argmax(dim=-1)

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        """Why a model with ``n_outputs`` outputs cannot be trained on ``n_classes`` classes."""
        if n_outputs < n_classes:
            return f"the model has {n_outputs} output(s) but the data has {n_classes} classes"
        return None


@LOSSES.register
class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on the scores (logits) per sample.

    Args:
        label_smoothing: as in torch.nn.functional.cross_entropy.
    """

    def __init__(self, label_smoothing: UnitInterval = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def compute(self, batch: LossInput) -> Tensor:
        return nn.functional.cross_entropy(batch.scores, batch.targets, label_smoothing=self.label_smoothing)


@LOSSES.register
class BinaryLoss(Loss):
    """The tempotron's perceptron hinge on the margin ``s = M - v_th``.

    With ``y = +1`` for "should fire" and ``-1`` otherwise: ``L = relu(-y s)`` and ``dL/ds = -y``
    wherever ``y s <= 0`` (errors, including exactly at threshold), else 0; averaged over the batch.
    One output: targets 1 (fire) / 0 (stay silent); the prediction is ``M >= v_th``.
    C outputs (one tempotron per class): output c should fire iff the target is c; the prediction
    is the output with the largest ``M``.

    Args:
        v_th: firing threshold.
    """

    def __init__(self, v_th: float = 1.0):
        super().__init__()
        self.v_th = v_th

    def signs(self, targets: Tensor, n_outputs: int, dtype: torch.dtype) -> Tensor:
        """Targets as +-1 per output, ``[B, C]``."""
        if n_outputs == 1:
            return (2 * targets.to(dtype) - 1).unsqueeze(-1)
        return 2 * nn.functional.one_hot(targets, n_outputs).to(dtype) - 1

    def compute(self, batch: LossInput) -> Tensor:
        scores = batch.scores
        y = self.signs(batch.targets, scores.shape[-1], scores.dtype)
        margin = y * (scores - self.v_th)
        wrong = (margin <= 0).to(scores.dtype)
        return (-margin * wrong).sum(dim=-1).mean()

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        if (n_outputs == 1 and n_classes <= 2) or n_outputs == n_classes:
            return None
        return (f"the model has {n_outputs} output(s) but the data has {n_classes} classes (BinaryLoss: one "
                f"output for two classes, or one per class)")

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        scores = as_input(batch).scores
        if scores.shape[-1] == 1:
            return (scores[..., 0] >= self.v_th).long()
        return scores.argmax(dim=-1)


@LOSSES.register
class SequenceNLL(Loss):
    """Log-softmax and negative log-likelihood of the readout's scores at every step.

    ``mode``: ``last`` (the sample's class from the last step's scores: label-last sequence
    classification), ``mean`` (the mean over steps of each step's NLL of the sample's class;
    the prediction is the class with the largest mean log-probability), ``per_step`` (a class per
    step, ``targets [B, T]``: the mean NLL over the steps that count, those the data's mask keeps
    after the first ``warmup_steps``; predicts a class per step).

    Args:
        mode: ``last``, ``mean`` or ``per_step``.
        warmup_steps: the first steps never count (``mean`` and ``per_step``).
    """

    needs_step_scores = True

    def __init__(self, mode: Literal["last", "mean", "per_step"] = "last", warmup_steps: NonNegativeInt = 0):
        super().__init__()
        self.mode, self.warmup_steps = mode, warmup_steps

    def target_kind(self) -> TargetKind:
        return "per_step" if self.mode == "per_step" else "class"

    def counted(self, batch: LossInput) -> Tensor:
        """``[T, B]`` bool: the steps that count (mask, after the warm-up)."""
        T, B = batch.step_scores.shape[:2]
        keep = torch.ones(T, B, dtype=torch.bool, device=batch.step_scores.device)
        keep[: self.warmup_steps] = False
        if batch.mask is not None:
            keep &= batch.mask.T.to(torch.bool)
        return keep

    def compute(self, batch: LossInput) -> Tensor:
        log_p = torch.log_softmax(batch.step_scores, dim=-1)  # [T, B, C]
        if self.mode == "last":
            return nn.functional.nll_loss(log_p[-1], batch.targets)
        if self.mode == "mean":
            per_step = -log_p.gather(-1, batch.targets.view(1, -1, 1).expand(log_p.shape[0], -1, 1)).squeeze(-1)
        else:
            per_step = -log_p.gather(-1, batch.targets.T.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [T, B]
        keep = self.counted(batch)
        return (per_step * keep).sum() / keep.sum().clamp(min=1)

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        batch = as_input(batch)
        if self.mode == "last":
            return batch.step_scores[-1].argmax(dim=-1)
        log_p = torch.log_softmax(batch.step_scores, dim=-1)
        if self.mode == "per_step":
            return log_p.argmax(dim=-1).T  # [B, T]
        return log_p[self.warmup_steps:].mean(dim=0).argmax(dim=-1)


@LOSSES.register
class SpikeCountLoss(Loss):
    """An energy penalty: ``weight`` x the mean number of spikes per sample, summed over every
    spiking layer (the BRF reproduction's energy-aware loss term). A regulariser: list it after
    the loss that predicts (``loss: [SequenceNLL, {type: SpikeCountLoss, weight: 1.0e-5}]``).

    Args:
        weight: the penalty per spike.
    """

    regularizer = True

    def __init__(self, weight: NonNegativeFloat = 1e-5):
        super().__init__()
        self.weight = weight

    def compute(self, batch: LossInput) -> Tensor:
        if not batch.spikes:
            return batch.scores.new_zeros(())
        batch_size = batch.spikes[0].shape[1]
        return self.weight * sum(s.sum() for s in batch.spikes) / batch_size


class LossSum(Loss):
    """The terms of a loss list added up; the first term that is not a regulariser predicts."""

    def __init__(self, terms: list[Loss]):
        super().__init__()
        self.terms = nn.ModuleList(terms)
        self.main = next(term for term in terms if not term.regularizer)
        self.needs_step_scores = any(term.needs_step_scores for term in terms)

    def target_kind(self) -> TargetKind:
        return self.main.target_kind()

    def compute(self, batch: LossInput) -> Tensor:
        return sum(term.compute(batch) for term in self.terms)

    def predict(self, batch: LossInput | Tensor) -> Tensor:
        return self.main.predict(batch)

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        return self.main.outputs_problem(n_outputs, n_classes)


def combine(loss: Loss | list[Loss]) -> Loss:
    """One loss from the YAML value: a single loss as it is, a list as its sum."""
    if isinstance(loss, Loss):
        return loss
    terms = list(loss)
    return terms[0] if len(terms) == 1 else LossSum(terms)
