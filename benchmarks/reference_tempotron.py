"""The tempotron epoch computed the way the original framework did it (benchmark reference).

For every pattern: its latency code as a dense raster ``[T, N]``, two cascaded leaky filters
stepped in time (synaptic current, then membrane), ``argmax`` over time, and the gradient from the
analytic kernel at ``t_max - t_i`` in that per-sample loop; then momentum SGD per batch.

The discretisation matches Spikelab's DENKernel exactly: the synaptic filter sees a spike the step
after it arrives and the membrane is scaled by ``V0 (b_m - b_s)``, so ``V[t] = sum_i w_i K(t - t_i)``.
"""
from __future__ import annotations

import math

import torch


def den_kernel(t: torch.Tensor, tau_m: float, tau_s: float, v0: float) -> torch.Tensor:
    return torch.where(t > 0, v0 * (torch.exp(-t / tau_m) - torch.exp(-t / tau_s)), torch.zeros_like(t))


def reference_epoch(times: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, order: torch.Tensor,
                    T: int, batch_size: int, lr: float, momentum: float, tau_m: float = 15.0,
                    tau_s: float = 3.75, v_th: float = 1.0) -> torch.Tensor:
    """One epoch of SingleSpikeLR + BinaryLoss + momentum; returns the new weights ``[1, N]``.

    ``times``: spike step of each afferent ``[P, N]`` (long); ``labels``: 1 fire / 0 silent.
    """
    from network.kernels.den import den_v0

    v0 = den_v0(tau_m, tau_s)
    b_m, b_s = math.exp(-1.0 / tau_m), math.exp(-1.0 / tau_s)
    w = weight.clone()
    velocity = torch.zeros_like(w)
    N = times.shape[1]
    scale = v0 * (b_m - b_s)
    for index in order.split(batch_size):
        B = len(index)
        grad = torch.zeros_like(w)
        for b in range(B):  # every pattern on its own
            raster = torch.zeros(T, N, dtype=w.dtype)
            raster[times[index[b]], torch.arange(N)] = 1
            current = torch.zeros(1, dtype=w.dtype)
            membrane = torch.zeros(1, dtype=w.dtype)
            voltage = torch.zeros(T, dtype=w.dtype)
            for t in range(1, T):  # two cascaded leaky filters, stepped in time
                current = b_s * current + raster[t - 1] @ w[0]
                membrane = b_m * membrane + current
                voltage[t] = scale * membrane
            peak, t_max = voltage.max(dim=0)
            y = 1.0 if int(labels[index[b]]) == 1 else -1.0
            if y * (float(peak) - v_th) <= 0:  # an error: dL/dM = -y / B, dM/dw_i = K(t_max - t_i)
                lag = (int(t_max) - times[index[b]]).to(w.dtype)
                grad[0] += (-y / B) * den_kernel(lag, tau_m, tau_s, v0)
        velocity = momentum * velocity + grad
        w = w - lr * velocity
    return w
