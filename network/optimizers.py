"""Optimizers (all of torch.optim by name, plus MomentumOptimizer) and LR schedulers.

Optimizers consume ``.grad`` only, whichever learning rule wrote it.
"""
from __future__ import annotations

import functools
import inspect
import operator
import types
import warnings
import typing
from typing import Any, Iterable, Literal

import torch
from torch import Tensor
from torch.optim.optimizer import _use_grad_for_differentiable

from settings import NonNegativeFloat, PositiveFloat
from settings.metrics import VAL_LOSS, selection_metric_problem
from settings.registries import OPTIMIZERS, SCHEDULERS

OPTIMIZERS.set_base(torch.optim.Optimizer)


@OPTIMIZERS.register
class MomentumOptimizer(torch.optim.Optimizer):
    """Heavy-ball momentum with one velocity buffer per parameter: ``m <- mu m + g; w <- w - lr m``.

    Args:
        lr: learning rate.
        momentum: mu.
    """

    def __init__(self, params: Iterable[Tensor], lr: PositiveFloat = 100.0, momentum: NonNegativeFloat = 0.99):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                velocity = state["velocity"]
                velocity.mul_(group["momentum"]).add_(p.grad)
                p.add_(velocity, alpha=-group["lr"])
        return loss


def _without_tensor(tp: Any) -> Any:
    """``float | Tensor`` -> ``float`` (also inside tuples): a YAML value is never a tensor, and
    the tensor member would otherwise let any value through the type check."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        kept = [_without_tensor(a) for a in args if a is not torch.Tensor]
        return functools.reduce(operator.or_, kept) if kept else tp
    if origin is tuple and args:
        return tuple[tuple(_without_tensor(a) for a in args)]
    return tp


def _torch_factory(cls: type, runtime: str, extra: dict[str, tuple[Any, Any]], make: Any, probe: Any,
                   refuse: str | None = None) -> Any:
    """A YAML constructor for a torch class: ``cls``'s keyword parameters (without ``runtime``)
    plus ``extra`` (name -> (annotation, default)); ``check_params`` builds it once on a probe
    so that torch's own argument checks (``Invalid learning rate: -0.5``) fail at validation.
    ``refuse``: why this class can never train a Spikelab model (reported at validation)."""
    own = [p for name, p in inspect.signature(cls).parameters.items() if name not in ("self", runtime)
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # torch annotations are not always resolvable
        hints = {}
    params = [inspect.Parameter(runtime, inspect.Parameter.KEYWORD_ONLY)]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, (_, d) in extra.items()]
    make.__signature__ = inspect.Signature(params)
    make.__annotations__ = {k: _without_tensor(v) for k, v in hints.items() if k in {p.name for p in own}} | {
        k: a for k, (a, _) in extra.items()}
    make.__name__ = make.__qualname__ = cls.__name__
    make.__doc__ = f"torch.optim {cls.__name__} (see the torch documentation)."

    def check_params(resolved: dict) -> list[tuple[str, str]]:
        if refuse:
            return [("type", f"{cls.__name__} cannot be used: {refuse}")]
        if "monitor" in extra and (problem := selection_metric_problem(resolved["monitor"])):
            return [("monitor", problem)]
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in resolved.items()
                  if k != "type" and k not in extra}
        try:
            probe(kwargs)
        except (ValueError, TypeError, KeyError, ArithmeticError, IndexError, RuntimeError) as exc:
            # torch's own checks of its arguments (RuntimeError: `fused` does not support `differentiable`)
            return [("", f"is rejected by torch {cls.__name__}: {exc or type(exc).__name__}")]
        return []

    make.check_params = check_params
    return make


def _probe_parameters() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2, 2))]


# the wrappers torch puts around optimizer methods for torch.compile: their first call imports
# torch._dynamo (over a second), which validation alone never needs
_COMPILE_GUARDS = (torch._disable_dynamo(lambda: None).__code__,
                   _use_grad_for_differentiable(lambda self: None).__code__)


@functools.cache
def _probe_class(cls: type) -> type:
    """``cls`` with its torch.compile guards unwrapped: the same argument checks, built and
    stepped by validation without importing torch._dynamo (eager code runs the same either way)."""
    unwrapped = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            if getattr(attr, "__code__", None) in _COMPILE_GUARDS:
                while getattr(attr, "__code__", None) in _COMPILE_GUARDS:
                    attr = attr.__wrapped__
                unwrapped[name] = attr
            elif name in unwrapped:
                del unwrapped[name]
    return type(f"_Probe{cls.__name__}", (cls,), unwrapped)


# torch optimizers that no Spikelab model can use, and what to use instead
_UNUSABLE_OPTIMIZERS = {"SparseAdam": "it needs sparse gradients (nn.Embedding(sparse=True)) and every Spikelab "
                                      "layer has dense ones; use Adam or AdamW"}


def _register_torch_optimizers() -> None:
    for name in sorted(dir(torch.optim)):
        cls = getattr(torch.optim, name)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)) or name.startswith("_") \
                or cls is torch.optim.Optimizer or name in OPTIMIZERS:
            continue

        def make(params: Any, _cls: type = cls, **kwargs: Any) -> torch.optim.Optimizer:
            return _cls(params, **{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})

        OPTIMIZERS.register(_torch_factory(cls, "params", {}, make,
                                           lambda kw, _cls=cls: _probe_class(_cls)(_probe_parameters(), **kw),
                                           _UNUSABLE_OPTIMIZERS.get(name)), name=name)


_register_torch_optimizers()


@SCHEDULERS.set_base
class Scheduler:
    """A torch LR scheduler plus when it steps.

    ``interval``: ``epoch`` (after every epoch) or ``batch`` (after every optimizer step).
    ``monitor``: the metric ReduceLROnPlateau watches (per epoch).
    """

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str = VAL_LOSS):
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor

    @property
    def needs_metric(self) -> bool:
        return isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def step(self, metrics: dict[str, float] | None = None) -> None:
        if self.needs_metric:
            if metrics is None or self.monitor not in metrics:
                raise KeyError(f"scheduler monitors {self.monitor!r}, which is not a metric of this run")
            self.scheduler.step(metrics[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


_NOT_FROM_YAML = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "LRScheduler"}
_SCHEDULER_EXTRA = {"interval": (Literal["epoch", "batch"], "epoch"), "monitor": (str, VAL_LOSS)}


def _register_torch_schedulers() -> None:
    module = torch.optim.lr_scheduler
    for name in sorted(dir(module)):
        cls = getattr(module, name)
        if not isinstance(cls, type) or name in _NOT_FROM_YAML or name.startswith("_") or not (
                issubclass(cls, module.LRScheduler) or cls is module.ReduceLROnPlateau):
            continue

        def make(optimizer: torch.optim.Optimizer, _cls: type = cls, interval: str = "epoch",
                 monitor: str = VAL_LOSS, **kwargs: Any) -> Scheduler:
            return Scheduler(_cls(optimizer, **kwargs), interval, monitor)

        def probe(kwargs: dict, _cls: type = cls) -> None:
            """Build it and take a step (``StepLR(step_size: 0)`` fails only when stepped)."""
            optimizer = _probe_class(torch.optim.SGD)(_probe_parameters(), lr=0.1)
            scheduler = _cls(optimizer, **kwargs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optimizer.step()
                if isinstance(scheduler, module.ReduceLROnPlateau):
                    scheduler.step(1.0)
                else:
                    scheduler.step()

        SCHEDULERS.register(_torch_factory(cls, "optimizer", _SCHEDULER_EXTRA, make, probe), name=name)


_register_torch_schedulers()
