"""Spike encoders (registered on import)."""
from encoders import latency, linear_time, rate  # noqa: F401
from encoders.base import Encoder

__all__ = ["Encoder"]
