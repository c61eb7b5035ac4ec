"""FirstSpikeLIF: a layer of current-based LIF neurons that each spike at most once, computed
in closed form from the input spike times (specs/first_spike.md, network/first_spike/spike_times.py).

It takes and gives :class:`~network.events.ContinuousSpikes` (``[B, N]`` times, +inf silent), so
first-spike layers stack; ``SpikeTimeReadout`` turns the last one's times into class scores.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from network.events import Activity, ContinuousSpikes
from network.first_spike.delays import Delay
from network.first_spike.spike_times import RATIOS, spike_times
from network.init import Initializer
from network.layers import Layer, LayerTrace
from settings import Factory, NonNegativeFloat, PositiveFloat, PositiveInt, create
from settings.registries import INITIALIZERS, LAYERS


@LAYERS.register
class FirstSpikeLIF(Layer):
    """``out_features`` LIF neurons without reset, each giving its first spike time.

    Args:
        out_features: number of neurons.
        tau_m: membrane time constant; ``tau_m / tau_s`` must be 1 or 2 (the closed forms).
        tau_s: synaptic time constant; the unit of all times in the layer.
        theta: threshold (the leak potential is 0).
        weight_init: initial weights ``[out, in (+ bias spikes)]`` (default: N(1, 1)).
        bias_times: times of extra bias inputs, one weight per neuron each (Fast&Deep: [0.9]).
        delay: learnable delays of the inputs (``SynapticDelay``, ``AxonalDelay``, ``DendriticDelay``).
        integrator: ``closed_form``, or ``euler`` (forward Euler at ``euler_dt``, the same analytic
            backward: the spike time's error shows the closed form's worth).
        euler_dt: Euler step (tau_s).
        max_dw_norm: drop the gradient of a (sample, neuron) whose largest ``|dL/dw|`` exceeds it.
        time_noise: std of Gaussian noise on the input times while training (tau_s).
        threshold_noise: std of Gaussian noise on each (sample, neuron) threshold while training.
    """

    kernel = None
    takes = "continuous"

    def __init__(self, in_features: int, out_features: PositiveInt, tau_m: PositiveFloat = 1.0,
                 tau_s: PositiveFloat = 1.0, theta: PositiveFloat = 1.0, weight_init: Initializer | None = None,
                 bias_times: list[float] | None = None, delay: Factory[Delay] | None = None,
                 integrator: Literal["closed_form", "euler"] = "closed_form", euler_dt: PositiveFloat = 0.01,
                 max_dw_norm: PositiveFloat | None = None, time_noise: NonNegativeFloat = 0.0,
                 threshold_noise: NonNegativeFloat = 0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.tau_s, self.ratio, self.theta = tau_s, tau_m / tau_s, theta
        self.integrator, self.euler_dt, self.max_dw_norm = integrator, euler_dt, max_dw_norm
        self.time_noise, self.threshold_noise = time_noise, threshold_noise
        self.register_buffer("bias_times", torch.tensor(list(bias_times or []), dtype=torch.float64))
        self.weight = nn.Parameter(torch.empty(out_features, in_features + len(self.bias_times)))
        create(weight_init or {"type": "Normal", "mean": 1.0, "std": 1.0}, INITIALIZERS)(self.weight.data)
        self.delay = delay(in_features=in_features, out_features=out_features) if isinstance(delay, Factory) else delay

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        ratio = params["tau_m"] / params["tau_s"]
        if not any(math.isclose(ratio, r) for r in RATIOS):
            return [("tau_m", f"tau_m / tau_s must be 1 or 2 (the closed forms), got {params['tau_m']:g} / "
                              f"{params['tau_s']:g} = {ratio:g}")]
        return []

    @property
    def spiking(self) -> bool:
        return True

    def input_times(self, x: ContinuousSpikes) -> Tensor:
        """Input times ``[B, S, I (+ bias)]`` in units of tau_s, delayed and (training) noisy."""
        t = x.times.to(self.weight.dtype) / self.tau_s
        if self.training and self.time_noise > 0:
            t = t + torch.randn_like(t) * (self.time_noise / self.tau_s)
        t = self.delay(t) if self.delay is not None else t.unsqueeze(1)
        if len(self.bias_times):
            bias = (self.bias_times.to(t.dtype) / self.tau_s).expand(t.shape[0], t.shape[1], -1)
            t = torch.cat([t, bias], dim=-1)
        return t

    def forward(self, x: Activity, state: Any = None) -> LayerTrace:
        if not isinstance(x, ContinuousSpikes):
            raise TypeError(f"FirstSpikeLIF takes continuous spike times (an encoder such as "
                            f"LinearTimeEncoder, or another FirstSpikeLIF layer), got {type(x).__name__}")
        t = self.input_times(x)
        c = torch.tensor(self.theta / self.ratio, dtype=self.weight.dtype, device=self.weight.device)
        if self.training and self.threshold_noise > 0:
            c = c + torch.randn(t.shape[0], self.out_features, dtype=c.dtype, device=c.device) * (
                self.threshold_noise / self.ratio)
        T = spike_times(t, self.weight, c, self.ratio, self.max_dw_norm, self.integrator, self.euler_dt)
        penalty = None
        if self.delay is not None:
            penalty = {"delay_l2": (self.delay.delays() * self.tau_s).pow(2).sum()}
        return LayerTrace(x, ContinuousSpikes(T * self.tau_s), None, None, True, penalty)
