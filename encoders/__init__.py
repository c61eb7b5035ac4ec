"""Spike encoders (registered on import)."""
from encoders import latency, rate  # noqa: F401
from encoders.base import Encoder

__all__ = ["Encoder"]
