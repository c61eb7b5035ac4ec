"""Losses on readout scores; each also defines how scores become a predicted class."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from settings import UnitInterval
from settings.registries import LOSSES


@LOSSES.set_base
class Loss(nn.Module):
    """``forward(scores [B, C], targets [B] class indices) -> scalar``; ``predict(scores) -> [B]``."""

    def predict(self, scores: Tensor) -> Tensor:
        return scores.argmax(dim=-1)

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        """Why a model with ``n_outputs`` outputs cannot be trained on ``n_classes`` classes."""
        if n_outputs < n_classes:
            return f"the model has {n_outputs} output(s) but the data has {n_classes} classes"
        return None


@LOSSES.register
class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on the scores (logits).

    Args:
        label_smoothing: as in torch.nn.functional.cross_entropy.
    """

    def __init__(self, label_smoothing: UnitInterval = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, scores: Tensor, targets: Tensor) -> Tensor:
        return nn.functional.cross_entropy(scores, targets, label_smoothing=self.label_smoothing)


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

    def forward(self, scores: Tensor, targets: Tensor) -> Tensor:
        y = self.signs(targets, scores.shape[-1], scores.dtype)
        margin = y * (scores - self.v_th)
        wrong = (margin <= 0).to(scores.dtype)
        return (-margin * wrong).sum(dim=-1).mean()

    def outputs_problem(self, n_outputs: int, n_classes: int) -> str | None:
        if (n_outputs == 1 and n_classes <= 2) or n_outputs == n_classes:
            return None
        return (f"the model has {n_outputs} output(s) but the data has {n_classes} classes (BinaryLoss: one "
                f"output for two classes, or one per class)")

    def predict(self, scores: Tensor) -> Tensor:
        if scores.shape[-1] == 1:
            return (scores[..., 0] >= self.v_th).long()
        return scores.argmax(dim=-1)
