"""Linear filters along time for reset-free kernels (PSP kernels): causal convolution by FFT and
sums of exponential traces by rescaled cumulative sums."""
from __future__ import annotations

import torch
from torch import Tensor

#: The largest ``t / tau`` one cumulative-sum pass rescales by: ``exp(600)`` ~ 1e260 stays finite
#: in float64; longer sequences are processed in chunks with the trace carried across.
MAX_GROWTH = 600.0


def causal_conv(x: Tensor, kernel: Tensor) -> Tensor:
    """``y[t] = sum_{s <= t} x[s] * kernel[t - s]`` along dim 0 of ``x`` ``[T, ...]``.

    Computed by FFT in float64 (exact to ~1e-12 relative), then cast back to ``x.dtype``.
    """
    T = x.shape[0]
    n = 1 << (2 * T - 1).bit_length()
    xf = torch.fft.rfft(x.to(torch.float64), n=n, dim=0)
    kf = torch.fft.rfft(kernel.to(torch.float64), n=n)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return torch.fft.irfft(xf * kf.reshape(shape), n=n, dim=0)[:T].to(x.dtype)


def causal_correlate(w: Tensor, kernel: Tensor) -> Tensor:
    """``g[s] = sum_{t >= s} w[t] * kernel[t - s]`` along dim 0 (the adjoint of ``causal_conv``)."""
    return causal_conv(w.flip(0), kernel).flip(0)


class ExponentialTraces:
    """``A[k, t, ...] = c_k sum_{s <= t} x[s, ...] b_k^(t - s) + b_k^(t + 1) a0[k, ...]`` with
    ``b_k = exp(-dt / tau_k)``: K scaled leaky traces of one input (``y_t = b y_{t-1} + c x_t``)
    without a loop over time. ``a0`` is in the same scaled units (the traces after the last step).

    Each trace is ``c b^t * cumsum_s(x[s] b^-s)`` in float64. The cumulative sum is dominated by
    its latest terms (they grow like ``b^-s``), so its rounding error relative to ``A`` stays
    ~1e-15; ``b^-s`` must stay finite, so sequences longer than ``MAX_GROWTH * min(tau) / dt``
    steps go in chunks with the traces carried over. The tables are cached per chunk length and
    device.
    """

    def __init__(self, taus: tuple[float, ...], dt: float, scales: tuple[float, ...] | None = None):
        self.rates = torch.tensor([dt / tau for tau in taus], dtype=torch.float64)  # [K] steps^-1
        self.scales = torch.tensor(scales if scales is not None else [1.0] * len(taus), dtype=torch.float64)
        self.chunk = max(1, int(MAX_GROWTH / float(self.rates.max())))
        self._tables: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}

    def tables(self, length: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``b^-t``, ``c b^t`` and ``b^(t + 1)``, each ``[K, length]`` (float64)."""
        key = (length, device)
        found = self._tables.get(key)
        if found is None:
            exponent = self.rates.unsqueeze(-1) * torch.arange(length, dtype=torch.float64)
            found = tuple(t.to(device) for t in (exponent.exp(), self.scales.unsqueeze(-1) * (-exponent).exp(),
                                                  (-exponent - self.rates.unsqueeze(-1)).exp()))
            self._tables[key] = found
        return found

    def __call__(self, x: Tensor, a0: Tensor | None = None) -> Tensor:
        """``x`` ``[T, ...]`` (any dtype) and ``a0`` ``[K, ...]`` -> ``A`` ``[K, T, ...]`` (float64)."""
        shape = (len(self.rates), -1) + (1,) * (x.dim() - 1)
        chunks = []
        for part in x.split(self.chunk, dim=0):
            growth, decay, carry = self.tables(part.shape[0], x.device)
            # the float64 table promotes the product (and everything after it) to float64
            traces = torch.cumsum(part * growth.reshape(shape), dim=1).mul_(decay.reshape(shape))
            if a0 is not None:
                traces = traces + a0.unsqueeze(1) * carry.reshape(shape)
            chunks.append(traces)
            a0 = traces[:, -1]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
