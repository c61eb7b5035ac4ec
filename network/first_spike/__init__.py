"""First-spike-time networks: closed-form LIF spike times with exact gradients, delays, losses."""
from network.first_spike import delays, layer, losses  # noqa: F401  (registers the components)
