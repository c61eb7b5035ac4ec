"""Causal convolution along time for linear, reset-free kernels (PSP kernels)."""
from __future__ import annotations

import torch
from torch import Tensor


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
