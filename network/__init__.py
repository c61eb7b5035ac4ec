"""Neuron kernels, layers, readouts, learning rules, losses and optimizers (registered on import)."""
from network import first_spike, init, losses, optimizers, readouts, rules, surrogates  # noqa: F401
from network import encoder_classifier, spikformer, srnn, stal  # noqa: F401
from network import sparsity  # noqa: F401
from network.events import SpikeTimes
from network.kernels import den, lif, resonators, stepped  # noqa: F401
from network.kernels.base import Kernel
from network.layers import Dense, Layer
from network.recurrent import Recurrent
from network.network import Network, NetworkOutput

__all__ = ["SpikeTimes", "Kernel", "Dense", "Layer", "Network", "NetworkOutput"]
