"""Event forms of spiking activity, beside dense rasters ``[T, B, N]``.

- :class:`SpikeTimes`: at most one spike per channel on the time grid (a step index, ``-1``
  silent), consumed event by event by grid layers (``Dense``'s scatter).
- :class:`ContinuousSpikes`: at most one spike per channel at a continuous time (``inf``
  silent), the activity first-spike-time layers pass between them (specs/first_spike.md).

Both are batch-major :class:`Events`; the loop handles every form through the functions at the
bottom of this module (``n_features``, ``select``, ``to_device``, ``time_steps``, ``spike_count``), so no other
module branches on the form.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class Events:
    """Base of batch-major event forms: ``times`` ``[B, N]``."""

    times: Tensor

    @property
    def batch_size(self) -> int:
        return self.times.shape[0]

    @property
    def size(self) -> int:
        return self.times.shape[1]

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: Tensor | slice) -> "Events":
        raise NotImplementedError

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Events":
        raise NotImplementedError

    def fired(self) -> Tensor:
        """``[B, N]`` bool: the channels that spiked."""
        raise NotImplementedError

    def count(self) -> int:
        return int(self.fired().sum())


@dataclass(frozen=True)
class SpikeTimes(Events):
    """One spike per input channel, given as a time step index (``-1``: silent).

    ``times`` is ``[B, N]`` (long); ``T`` the number of time steps. A dense raster would be
    ``[T, B, N]`` with ones at ``times``; layers consume this form event by event instead.
    """

    times: Tensor
    T: int

    def __getitem__(self, index: Tensor | slice) -> "SpikeTimes":
        return SpikeTimes(self.times[index], self.T)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "SpikeTimes":
        return SpikeTimes(self.times.to(device), self.T)

    def fired(self) -> Tensor:
        return self.times >= 0

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The raster ``[T, B, N]``."""
        B, N = self.times.shape
        raster = torch.zeros(self.T, B, N, dtype=dtype, device=self.times.device)
        b, n = self.fired().nonzero(as_tuple=True)
        raster[self.times[b, n], b, n] = 1
        return raster


@dataclass(frozen=True)
class ContinuousSpikes(Events):
    """One spike per channel at a continuous time ``times`` ``[B, N]`` (float, in units of the
    layers' tau_s; ``inf``: no spike). Differentiable: gradients flow to ``times``."""

    times: Tensor

    def __getitem__(self, index: Tensor | slice) -> "ContinuousSpikes":
        return ContinuousSpikes(self.times[index])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "ContinuousSpikes":
        return ContinuousSpikes(self.times.to(device, dtype) if dtype is not None else self.times.to(device))

    def fired(self) -> Tensor:
        return torch.isfinite(self.times)


Activity = Tensor | Events


def n_features(x: Activity) -> int | tuple[int, ...]:
    """Channels per sample of a raster ``[T, B, N]`` or an event form; the sample's shape
    ``(C, H, W)`` of an image raster ``[T, B, C, H, W]`` (models that take images build from it)."""
    if isinstance(x, Events):
        return x.size
    return x.shape[-1] if x.dim() <= 3 else tuple(x.shape[2:])


def select(x: Activity, index: Tensor) -> Activity:
    """The samples ``index`` (the batch axis is 1 for a raster, 0 for events)."""
    return x[index] if isinstance(x, Events) else x[:, index]


def to_device(x: Activity, device: torch.device | str, dtype: torch.dtype | None) -> Activity:
    """``x`` on ``device``; floating values (rasters, continuous times) in ``dtype``; step indices
    and compact integer rasters keep their type (None: keep every type)."""
    if isinstance(x, Events):
        return x.to(device, dtype)
    return x.to(device, dtype) if dtype is not None else x.to(device)


def time_steps(x: Activity) -> int | None:
    """Steps of the time grid of a raster or grid events; None for continuous times (no grid)."""
    if isinstance(x, ContinuousSpikes):
        return None
    return x.T if isinstance(x, SpikeTimes) else x.shape[0]


def spike_count(x: Activity) -> float:
    """Total number of spikes in a raster or an event form."""
    return float(x.count()) if isinstance(x, Events) else float(x.sum())
