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


def _check_env(params: dict) -> list[tuple[str, str]]:
    """An explicit device this machine cannot run on is an error before anything runs
    (``auto`` picks a GPU where the run executes, e.g. on a Dask worker)."""
    import torch

    name = params["device"]
    if name == "auto":
        return []
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return [("device", f"{name!r} is not a device; allowed: cpu, cuda, cuda:<index>, mps, auto")]
    if device.type == "cuda" and not torch.cuda.is_available():
        return [("device", f"{name!r} but this machine has no CUDA GPU; use cpu, or auto (a GPU where the run "
                           f"executes, if any)")]
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return [("device", f"{name!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")]
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return [("device", f"{name!r} but MPS is not available here; use cpu or auto")]
    if device.type not in ("cpu", "cuda", "mps"):
        return [("device", f"{name!r} is not supported; allowed: cpu, cuda, cuda:<index>, mps, auto")]
    return []


Env.check_params = staticmethod(_check_env)

ENV_KEYS = tuple(Env.__dataclass_fields__)
