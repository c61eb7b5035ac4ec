"""Spike encoders (registered on import)."""
from encoders import latency, level_crossing, linear_time, population, rate  # noqa: F401
from encoders.base import Encoder

__all__ = ["Encoder"]
