"""Labels for the parts of an epoch, seen by ``torch.profiler`` (``record_function`` ranges).

The loop marks where a training epoch spends its time: ``data`` (shuffling, batching, a
resampled encoding), ``forward`` (the model and the loss), ``backward`` (the learning rules
writing ``.grad``, gradient clipping), ``optimizer`` (the optimizer and a per-batch scheduler
step; it holds the closure, so forward and backward run inside it), ``callbacks`` (the per-batch
and end-of-epoch hooks) and ``evaluation``. Outside a profiler a range costs about a
microsecond.
"""
from __future__ import annotations

from torch.profiler import record_function

PREFIX = "spikelab."
PHASES = ("data", "forward", "backward", "optimizer", "callbacks", "evaluation")


def phase(name: str) -> record_function:
    """The ``record_function`` range of phase ``name`` (one of ``PHASES``)."""
    return record_function(PREFIX + name)
