"""env.yaml: the simulation environment shared by every component of a run.

Constructor parameters named like these keys (``T``, ``dt``, ``v_th``, ...) receive the env
value unless the YAML sets them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from settings.schema import PositiveFloat, PositiveInt


@dataclass(frozen=True)
class Env:
    """Simulation environment.

    Args:
        T: duration of a sample (ms); it is simulated in ``T / dt`` time steps.
        dt: time step (ms).
        v_th: firing threshold.
        v_reset: reset potential.
        v_0: PSP normalisation; ``null`` lets a kernel compute it from its time constants.
        device: ``cpu``, ``cuda``, ``cuda:1``, ``mps`` or ``auto`` (GPU when present).
        dtype: floating point precision of the simulation.
        threads: torch intra-op threads per run. 1 (the default) keeps a run's results bitwise
            identical whichever executor runs it (float sums depend on the thread count);
            ``null`` gives each run an equal share of the cores (all of them when inline).
    """

    T: PositiveFloat = 100.0
    dt: PositiveFloat = 1.0
    v_th: float = 1.0
    v_reset: float = 0.0
    v_0: float | None = None
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    threads: PositiveInt | None = 1


ENV_KEYS = tuple(Env.__dataclass_fields__)
