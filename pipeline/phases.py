"""Labels for the parts of an epoch, seen by ``torch.profiler`` (``record_function`` ranges).

The loop marks where a training epoch spends its time: ``data`` (shuffling, batching, a
resampled encoding), ``forward`` (the model and the loss), ``backward`` (the learning rules
writing ``.grad``, gradient clipping), ``optimizer`` (the optimizer and a per-batch scheduler
step; it holds the closure, so forward and backward run inside it), ``callbacks`` (the per-batch
and end-of-epoch hooks) and ``evaluation``. A range is opened only while a profiler records
(a range costs several microseconds, the check well under one).
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch.autograd.profiler as autograd_profiler
from torch.profiler import record_function

PREFIX = "spikelab."
PHASES = ("data", "forward", "backward", "optimizer", "callbacks", "evaluation")


def phase(name: str) -> ContextManager:
    """The ``record_function`` range of phase ``name`` (one of ``PHASES``) while a profiler records."""
    if autograd_profiler._is_profiler_enabled:  # set by torch.profiler.profile while it records
        return record_function(PREFIX + name)
    return contextlib.nullcontext()
