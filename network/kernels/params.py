"""Per-neuron constants of a kernel: one number for all neurons, or an initializer spec drawn per
neuron (``tau_m: {type: Normal, mean: 20, std: 5}``), trainable when the kernel's ``learn`` lists it."""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

from network.init import Initializer
from settings import PositiveFloat

#: A kernel constant in YAML: a number (> 0) or an initializer drawn once per neuron.
NeuronValue = Union[PositiveFloat, Initializer]


def neuron_tensor(value: float | Initializer, size: int, per_neuron: bool) -> torch.Tensor:
    """``value`` as a tensor: ``[size]`` when drawn from an initializer or ``per_neuron``, else a
    scalar shared by all neurons. Initializers draw from torch's global (seeded) generator; they
    fill a ``[size, 1]`` matrix (one fan-in per neuron), flattened to ``[size]``."""
    if isinstance(value, Initializer):
        drawn = torch.empty(size, 1)
        value(drawn)
        return drawn.reshape(size)
    return torch.full((size,) if per_neuron else (), float(value))


def add_neuron_constant(module: nn.Module, name: str, value: float | Initializer | None, size: int,
                        learn: bool) -> None:
    """Register ``name`` on ``module``: an ``nn.Parameter`` ``[size]`` when learned, else a buffer
    (so it follows ``.to(device)``); ``None`` sets the attribute to None."""
    if value is None:
        setattr(module, name, None)
        return
    tensor = neuron_tensor(value, size, per_neuron=learn)
    if learn:
        setattr(module, name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)
