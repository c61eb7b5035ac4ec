"""The Spikelab version: ``python main.py --version`` prints it and the environment capsule of
every experiment records it (``packages["spikelab"]``)."""

SPIKELAB_VERSION = "0.1.0"
