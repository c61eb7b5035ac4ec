"""Resonate-and-fire neurons (RF, BRF, BHRF) and the adaptive LIF (ALIF), after
specs/resonators.md (Higuchi et al. 2024; Izhikevich 2001; Yin et al. 2021)."""
from __future__ import annotations

import torch
from torch import Tensor


def divergence_boundary(omega: Tensor, dt: float) -> Tensor:
    """``p(omega) = (-1 + sqrt(1 - (dt omega)^2)) / dt``: the largest damping for which the Euler
    step of ``du/dt = (b + i omega) u`` does not grow (``|1 + dt (b + i omega)| <= 1``); defined
    for ``|omega| <= 1 / dt`` (larger values are clamped to the edge)."""
    scaled = (dt * omega).clamp(-1.0, 1.0)
    return (-1.0 + torch.sqrt(1.0 - scaled * scaled)) / dt
