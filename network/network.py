"""A feed-forward network built from a list of layer specs and a readout."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from network.events import Activity, spike_count
from network.layers import Layer, LayerTrace
from network.readouts import Readout, ReadoutOutput
from settings import Factory
from settings.errors import ConfigError, ConfigIssue
from settings.registries import MODELS


class NetworkOutput(NamedTuple):
    scores: Tensor  # [B, C]
    traces: list[LayerTrace]  # one per layer
    readout: ReadoutOutput

    def penalties(self) -> dict[str, Tensor]:
        """The named penalty terms the layers report (``LayerTrace.penalty``), summed by name."""
        terms: dict[str, Tensor] = {}
        for trace in self.traces:
            for name, value in (trace.penalty or {}).items():
                terms[name] = terms[name] + value if name in terms else value
        return terms

    def spikes_per_sample(self) -> float:
        """Mean number of spikes per sample over all spiking layers."""
        total = sum(spike_count(t.out) for t in self.traces if t.spiking)
        return total / self.scores.shape[0]


@MODELS.set_base
class Model(nn.Module):
    """Base class of models: ``forward(x) -> NetworkOutput``; built with ``input_size``;
    ``out_features``: the number of class scores."""

    out_features: int


@MODELS.register
class Network(Model):
    """Layers in sequence, then a readout.

    Args:
        layers: layer specs, first to last; each layer's ``in_features`` is the previous size.
        readout: turns the last layer's activity into class scores.
    """

    def __init__(self, input_size: int, layers: list[Factory[Layer]], readout: Factory[Readout]):
        super().__init__()
        if not layers:
            raise ConfigError(ConfigIssue("model.layers", "must list at least one layer"))
        built = []
        size = input_size
        for factory in layers:
            layer = factory(in_features=size) if isinstance(factory, Factory) else factory
            built.append(layer)
            size = layer.out_features
        self.layers = nn.ModuleList(built)
        self.readout = readout(in_features=size) if isinstance(readout, Factory) else readout
        self.input_size = input_size

    @property
    def out_features(self) -> int:
        return self.readout.out_features

    def forward(self, x: Activity) -> NetworkOutput:
        """``x``: ``[T, B, input_size]`` or events (network.events); returns scores ``[B, C]`` and every layer's trace."""
        traces = []
        for layer in self.layers:
            trace = layer(x)
            traces.append(trace)
            x = trace.out
        readout = self.readout(traces[-1])
        return NetworkOutput(readout.scores, traces, readout)

    @torch.no_grad()
    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
