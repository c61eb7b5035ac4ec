"""Optimizers (all of torch.optim by name, plus MomentumOptimizer) and LR schedulers.

Optimizers consume ``.grad`` only, whichever learning rule wrote it.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Iterable, Literal

import torch
from torch import Tensor

from settings import NonNegativeFloat, PositiveFloat
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


def _register_torch_optimizers() -> None:
    for name in sorted(dir(torch.optim)):
        cls = getattr(torch.optim, name)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer \
                and name not in OPTIMIZERS and not name.startswith("_"):
            OPTIMIZERS.register(cls, name=name)


_register_torch_optimizers()


@SCHEDULERS.set_base
class Scheduler:
    """A torch LR scheduler plus when it steps.

    ``interval``: ``epoch`` (after every epoch) or ``batch`` (after every optimizer step).
    ``monitor``: the metric ReduceLROnPlateau watches (per epoch).
    """

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str = "val_loss"):
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


def _scheduler_factory(cls: type) -> Any:
    """A constructor with ``cls``'s signature plus ``interval`` and ``monitor``."""

    def make(optimizer: torch.optim.Optimizer, interval: str = "epoch", monitor: str = "val_loss", **kwargs: Any):
        return Scheduler(cls(optimizer, **kwargs), interval, monitor)

    own = [p for name, p in inspect.signature(cls).parameters.items() if name not in ("self", "optimizer")
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    params = [inspect.Parameter("optimizer", inspect.Parameter.KEYWORD_ONLY)] + [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + [
        inspect.Parameter("interval", inspect.Parameter.KEYWORD_ONLY, default="epoch"),
        inspect.Parameter("monitor", inspect.Parameter.KEYWORD_ONLY, default="val_loss")]
    make.__signature__ = inspect.Signature(params)
    make.__annotations__ = {k: v for k, v in hints.items() if k in {p.name for p in own}} | {
        "interval": Literal["epoch", "batch"], "monitor": str}
    make.__name__ = make.__qualname__ = cls.__name__
    make.__doc__ = f"torch.optim.lr_scheduler.{cls.__name__} (see the torch docs), stepped per ``interval``."
    return make


def _register_torch_schedulers() -> None:
    module = torch.optim.lr_scheduler
    for name in sorted(dir(module)):
        cls = getattr(module, name)
        if isinstance(cls, type) and name not in _NOT_FROM_YAML and not name.startswith("_") and (
                issubclass(cls, module.LRScheduler) or cls is module.ReduceLROnPlateau):
            SCHEDULERS.register(_scheduler_factory(cls), name=name)


_register_torch_schedulers()
