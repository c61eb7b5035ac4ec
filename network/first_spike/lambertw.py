"""The principal branch W0 of the Lambert W function for tensors (``w exp(w) = z``).

Halley iterations from an initial guess: the branch-point series in ``p = sqrt(2 (e z + 1))``
below ``z = -1/4``, Winitzki's approximation above. ``e z + 1`` is formed as ``e (z + 1/e)``
with 1/e split into two doubles, so the series keeps its precision next to the branch point,
where it is used as it is (``p < 1e-3``: its error there is below 1e-15).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

INV_E_HI = 0.36787944117144233  # 1/e = INV_E_HI + INV_E_LO to about 1e-33
INV_E_LO = -1.2428753672788363e-17
BRANCH_POINT = -INV_E_HI


def branch_distance(z: Tensor) -> Tensor:
    """``p = sqrt(2 (e z + 1))``, clamped at 0 (0 at z = -1/e; NaN-free below it)."""
    return torch.sqrt((2.0 * math.e * ((z + INV_E_HI) + INV_E_LO)).clamp(min=0.0))


def lambertw0(z: Tensor, max_iterations: int = 12) -> Tensor:
    """``W0(z)`` elementwise for ``z >= -1/e`` (NaN below it), in ``z``'s floating type."""
    p = branch_distance(z)
    series = -1.0 + p * (1.0 + p * (-1.0 / 3.0 + p * (11.0 / 72.0 + p * (-43.0 / 540.0))))
    L = torch.log1p(z.clamp(min=-0.25))
    winitzki = L * (1.0 - torch.log1p(L) / (2.0 + L))
    w = torch.where(z < -0.25, series, winitzki)
    tol = 4 * torch.finfo(z.dtype).eps
    for _ in range(max_iterations):
        ew = torch.exp(w)
        f = w * ew - z
        wp1 = w + 1.0
        denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
        step = f / torch.where(denom == 0, torch.ones_like(denom), denom)
        step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
        w = w - step
        # converged: a step at rounding level, or a residual at rounding level (next to the
        # branch point the steps can oscillate by a few ulps of the ill-conditioned W)
        moving = (step.abs() > tol * (1.0 + w.abs())) & (f.abs() > tol * (z.abs() + (w * ew).abs()))
        if not bool(moving.any()):
            break
    w = torch.where(p < 1e-3, series, w)
    return torch.where(z < BRANCH_POINT - 4 * torch.finfo(z.dtype).eps, torch.full_like(z, math.nan), w)
