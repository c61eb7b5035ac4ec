"""SRNN: the small recurrent spiking classifier the STAL thesis puts behind its encoders
(specs/encoders_losses.md): fc -> recurrent LIF -> fc -> recurrent LIF output, the class scores
the output spikes summed over the steps."""
from __future__ import annotations

import math
from typing import Annotated

from torch import Tensor

from network.events import Activity, SpikeTimes
from network.kernels.lif import LIFKernel
from network.network import Model, NetworkOutput
from network.readouts import SpikeCount
from network.recurrent import Recurrent
from network.surrogates import Surrogate
from settings import Gt, Lt, PositiveInt
from settings.registries import MODELS

#: tau_syn (ms) of a memoryless synapse: exp(-dt / tau_syn) is 0 in float32 and float64, so the
#: CUBA LIF's current is the input itself
MEMORYLESS_SYNAPSE = 1e-6


def leaky_lif(size: int, beta: float, v_th: float, surrogate: Surrogate) -> LIFKernel:
    """LIF neurons ``U_t = beta U_{t-1} + I_t - v_th z_{t-1}`` (snnTorch's ``Leaky`` with a
    subtractive reset): LIFKernel's CUBA form with a memoryless synapse, on a 1 ms step."""
    return LIFKernel(size, tau_m=-1.0 / math.log(beta), tau_syn=MEMORYLESS_SYNAPSE, v_th=v_th, reset="soft",
                     surrogate=surrogate, dt=1.0)


@MODELS.register
class SRNN(Model):
    """Two recurrent LIF layers: ``I_t = W [x_t ; z_{t-1}] + b`` (a fully connected input and
    all-to-all recurrent synapses, network/recurrent.py) into ``hidden`` neurons, then into one
    neuron per class; each neuron ``U_t = beta U_{t-1} + I_t - v_th z_{t-1}``. The scores are the
    output spikes summed over the steps it is given (``psi`` steps behind a STAL encoder), trained
    with cross-entropy on them. Image inputs ``[T, B, C, H, W]`` are flattened.

    Args:
        out_features: output neurons (one per class).
        hidden: recurrent hidden neurons.
        beta: membrane decay per step.
        v_th: firing threshold.
        surrogate: pseudo-derivative of the spike.
    """

    takes_images = True  # inputs [T, B, C, H, W] (data layout: image)

    def __init__(self, input_size: int | tuple[int, ...], out_features: PositiveInt, hidden: PositiveInt = 56,
                 beta: Annotated[float, Gt(0), Lt(1)] = 0.9, v_th: float = 1.0, surrogate: Surrogate = "FastSigmoid"):
        super().__init__()
        self.input_size = input_size
        n_in = input_size if isinstance(input_size, int) else math.prod(input_size)
        self.hidden = Recurrent(n_in, hidden, leaky_lif(hidden, beta, v_th, surrogate))
        self.output = Recurrent(hidden, out_features, leaky_lif(out_features, beta, v_th, surrogate))
        self.readout = SpikeCount(out_features)
        self.out_features = out_features

    def forward(self, x: Activity) -> NetworkOutput:
        """``x [T, B, ...]`` (or single spikes) -> scores ``[B, out_features]``, the output spike counts."""
        flat: Tensor | SpikeTimes = x if isinstance(x, SpikeTimes) else x.flatten(2)
        hidden = self.hidden(flat)
        output = self.output(hidden.out)
        readout = self.readout(output)
        return NetworkOutput(readout.scores, [hidden, output], readout)
