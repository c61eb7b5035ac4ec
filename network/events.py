"""Event (spike-time) representation of inputs with at most one spike per channel."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SpikeTimes:
    """One spike per input channel, given as a time step index (``-1``: silent).

    ``times`` is ``[B, N]`` (long); ``T`` the number of time steps. A dense raster would be
    ``[T, B, N]`` with ones at ``times``; layers consume this form event by event instead.
    """

    times: Tensor
    T: int

    @property
    def batch_size(self) -> int:
        return self.times.shape[0]

    @property
    def size(self) -> int:
        return self.times.shape[1]

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: Tensor | slice) -> "SpikeTimes":
        return SpikeTimes(self.times[index], self.T)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "SpikeTimes":
        return SpikeTimes(self.times.to(device), self.T)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The raster ``[T, B, N]``."""
        B, N = self.times.shape
        raster = torch.zeros(self.T, B, N, dtype=dtype, device=self.times.device)
        active = self.times >= 0
        b, n = active.nonzero(as_tuple=True)
        raster[self.times[b, n], b, n] = 1
        return raster

    def count(self) -> int:
        return int((self.times >= 0).sum())
