"""Learning rules: the one thing that turns a loss into parameter gradients (``.grad``).

Every optimizer only consumes ``.grad``, so any rule works with any optimizer. Rules add to
``.grad`` (the pipeline zeroes it first), so several rules on one layer sum up.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from network.events import SpikeTimes
from network.network import Network, NetworkOutput
from network.readouts import MaxMembrane, SoftMaxMembrane
from settings import NonNegativeFloat, PositiveFloat
from settings.registries import LEARNING_RULES


@dataclass
class RuleContext:
    """What a rule may look at after the forward pass of one batch."""

    model: Network
    inputs: Tensor | SpikeTimes
    targets: Tensor
    output: NetworkOutput
    scores: Tensor  # the scores the loss was computed on (a graph leaf for local rules)
    loss: Tensor
    error: Tensor | None = None  # dL/dscores, computed once by the first local rule that asks


@LEARNING_RULES.set_base
class LearningRule:
    """Base class. ``needs_graph``: whether the forward pass must record an autograd graph.

    What a rule can train is declared, so that a config it cannot work with is refused before
    anything runs (pipeline.compatibility): ``readouts`` (the readout types it needs; empty:
    any), ``needs_linear_kernel`` (its layer's kernel must be reset-free, with an impulse
    response, in a ``Dense`` layer), ``last_layer_only``, ``class_targets`` (one label per sample).
    """

    needs_graph: bool = False
    readouts: tuple[str, ...] = ()
    needs_linear_kernel: bool = False
    last_layer_only: bool = False
    class_targets: bool = False
    layer: int = -1

    def accumulate(self, ctx: RuleContext) -> None:
        """Add this rule's gradient to ``.grad`` of the parameters it trains."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


def _add_grad(param: torch.nn.Parameter, grad: Tensor) -> None:
    grad = grad.to(param.dtype)
    param.grad = grad if param.grad is None else param.grad + grad


def score_error(ctx: RuleContext) -> Tensor:
    """``dL/dscores`` ``[B, C]`` (the loss's error signal for local rules), cached on ``ctx``."""
    if ctx.error is None:
        if not ctx.scores.requires_grad:
            raise RuntimeError("local learning rules need the scores as a graph leaf")
        (ctx.error,) = torch.autograd.grad(ctx.loss, ctx.scores, retain_graph=True)
    return ctx.error


@LEARNING_RULES.register
class BPTT(LearningRule):
    """Backpropagation through time with autograd (surrogate gradients through spikes)."""

    needs_graph = True

    def accumulate(self, ctx: RuleContext) -> None:
        ctx.loss.backward(retain_graph=False)


class _LayerRule(LearningRule):
    def __init__(self, layer: int = -1):
        self.layer = layer

    def target(self, ctx: RuleContext):
        layers = ctx.model.layers
        if not -len(layers) <= self.layer < len(layers):
            raise IndexError(f"{type(self).__name__}: layer {self.layer} does not exist ({len(layers)} layers)")
        return layers[self.layer], ctx.output.traces[self.layer]


@LEARNING_RULES.register
class SingleSpikeLR(_LayerRule):
    """The tempotron rule: ``dM/dw_i = sum_{t_i^f < t_max} K(t_max - t_i^f)``, t_max held fixed.

    The loss's error ``E = dL/dM`` (from the readout scores) gives ``dL/dw_i = E dM/dw_i``, summed
    over the batch. Needs a reset-free kernel (``DENKernel``) and a ``MaxMembrane`` readout on the
    trained layer.

    Args:
        layer: index of the layer it trains (default: the last).
    """

    readouts = ("MaxMembrane",)
    needs_linear_kernel = last_layer_only = class_targets = True

    def __init__(self, layer: int = -1):
        super().__init__(layer)

    def accumulate(self, ctx: RuleContext) -> None:
        layer, trace = self.target(ctx)
        if not isinstance(ctx.model.readout, MaxMembrane) or layer is not ctx.model.layers[-1]:
            raise TypeError("SingleSpikeLR trains the last layer under a MaxMembrane readout")
        error = score_error(ctx)  # [B, O]
        if not error.any():  # no errors in this batch: a zero gradient (momentum still moves)
            _add_grad(layer.weight, torch.zeros_like(layer.weight))
            return
        psp = layer.psp(trace.input, ctx.output.readout.time_index)  # [B, O, in] at t_max [B, O]
        # sum_b E[b, o] psp[b, o, i] as one batched product over the outputs
        grad = torch.matmul(error.to(psp.dtype).t().unsqueeze(1), psp.transpose(0, 1)).squeeze(1)
        _add_grad(layer.weight, grad)


@LEARNING_RULES.register
class IntegrateLR(_LayerRule):
    """Soft max over time (specs/tempotron.md): ``dL/dw_i = E beta sum_t softmax_t(beta V)_t PSP_i(t)``,
    with ``PSP_i(t) = sum_{t_i^f <= t} K(t - t_i^f)`` and the loss's error ``E = dL/ds``, summed over
    the batch, every time step contributing by its softmax weight (SingleSpikeLR keeps only ``t_max``).

    ``beta sum_t softmax_t PSP_t`` is the gradient of the spec's ``log(sum_t exp(beta V_t) dt)``.
    Under the ``SoftMaxMembrane`` readout (same beta), whose score is that divided by beta, the
    rule is beta times the exact gradient of the loss; under ``MaxMembrane`` the decision stays
    ``max_t V`` and the rule is a smoothed tempotron rule.
    Needs a reset-free kernel on the trained (last) layer.

    Args:
        beta: sharpness of the soft max (50 in the original framework).
        layer: index of the layer it trains (default: the last).
    """

    readouts = ("MaxMembrane", "SoftMaxMembrane")
    needs_linear_kernel = last_layer_only = class_targets = True

    def __init__(self, beta: PositiveFloat = 50.0, layer: int = -1):
        super().__init__(layer)
        self.beta = beta

    def accumulate(self, ctx: RuleContext) -> None:
        layer, trace = self.target(ctx)
        readout = ctx.model.readout
        if not isinstance(readout, (MaxMembrane, SoftMaxMembrane)) or layer is not ctx.model.layers[-1]:
            raise TypeError("IntegrateLR trains the last layer under a MaxMembrane or SoftMaxMembrane readout")
        if isinstance(readout, SoftMaxMembrane) and readout.beta != self.beta:
            raise ValueError(f"IntegrateLR beta ({self.beta:g}) must equal the SoftMaxMembrane readout's "
                             f"beta ({readout.beta:g})")
        error = score_error(ctx)  # [B, O]
        v = trace.membrane.detach().to(torch.float64)
        weights = self.beta * torch.softmax(self.beta * v, dim=0) * error.to(torch.float64)  # [T, B, O]
        _add_grad(layer.weight, layer.eligibility(trace.input, weights).sum(dim=0))


@LEARNING_RULES.register
class PlasticityInduction(_LayerRule):
    """Wakes silent neurons: for each output that should have fired and never crossed v_th, add
    ``-eps`` to the gradient of all its afferent weights (mean over the batch, like the loss).

    Args:
        eps: gradient step for silent neurons.
        v_th: firing threshold.
        layer: index of the layer it trains (default: the last).
    """

    class_targets = True

    def __init__(self, eps: NonNegativeFloat = 1e-4, v_th: float = 1.0, layer: int = -1):
        super().__init__(layer)
        self.eps, self.v_th = eps, v_th

    def accumulate(self, ctx: RuleContext) -> None:
        layer, trace = self.target(ctx)
        peak = trace.membrane.max(dim=0).values  # [B, O]
        O = peak.shape[-1]
        should = (ctx.targets.unsqueeze(-1) == 1) if O == 1 else torch.nn.functional.one_hot(ctx.targets, O).bool()
        silent = (should & (peak < self.v_th)).to(layer.weight.dtype).mean(dim=0)  # [O]
        _add_grad(layer.weight, -self.eps * silent.unsqueeze(-1).expand_as(layer.weight))
