"""Fused recurrent cells: a whole sequence of a resonator or ALIF layer in one compiled forward
loop without an autograd graph, and a hand-written reverse-time backward
(``network/kernels/cell_loops.py``), wrapped as ``torch.autograd.Function``.

``run_cell(cell, drive, weight, z0, params, state)`` returns the spikes ``[T, B, N]``, the
membrane ``[T, B, N]``, the final state and the final spikes. ``weight`` is the recurrent weight
``[N, N]`` (``I_t = D_t + W z_{t-1}``) or None for a feed-forward kernel. Gradients reach the
drive, the recurrent weight, the per-neuron parameters (through the torch expressions that made
them: ``|omega|``, ``p(|omega|)``, ``exp(-dt/|tau|)`` stay in autograd) and the initial state,
and equal those of the step-by-step autograd loop of the same equations (tests/network/test_cells.py).

The loops run on the CPU (numba); tensors elsewhere, or a machine without numba, use the
step-by-step autograd path (:func:`fused_available`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
from torch import Tensor

from network.surrogates import Surrogate


@lru_cache(maxsize=1)
def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def fused_available(*tensors: Tensor) -> bool:
    """The compiled loops apply: numba is installed and every tensor is a float32/float64 CPU tensor."""
    return (_numba_installed()
            and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in tensors))


@dataclass(frozen=True)
class Cell:
    """What a fused cell needs from its kernel: the name of its loops in ``cell_loops``
    (``<name>_forward`` / ``<name>_backward``), how many state variables it has, its constants
    (floats and flags, in loop order), which state array is the membrane trace, and the
    surrogate of its spike."""

    name: str
    n_states: int
    constants: tuple
    surrogate: Surrogate
    membrane: str  # the membrane trace: "first"/"second" state variable after the step, or "pre" (ALIF's pre-reset)


@lru_cache(maxsize=None)
def _loops(name: str) -> tuple[Callable, Callable]:
    from network.kernels import cell_loops

    return _interruptible(getattr(cell_loops, f"{name}_forward")), _interruptible(getattr(cell_loops, f"{name}_backward"))


def _interruptible(loop: Callable) -> Callable:
    """A compiled loop that re-raises a Ctrl-C or SIGTERM received while it ran: the signal
    handler's exception is set during the compiled call, and Python reports it as a SystemError
    ("returned a result with an exception set") caused by the KeyboardInterrupt; the run must
    end INTERRUPTED, not FAILED."""
    def run(*args):
        try:
            return loop(*args)
        except SystemError as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):
                raise exc.__cause__ from None
            raise
    return run


class _FusedCell(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell: Cell, n_params: int, drive: Tensor, weight: Tensor | None, z0: Tensor, *rest: Tensor):
        params, state0 = rest[:n_params], rest[n_params:]
        forward_loop, _ = _loops(cell.name)
        T, B, N = drive.shape
        dtype = drive.dtype
        np_params = [p.detach().to(dtype).expand(N).contiguous().numpy() for p in params]
        states = [torch.empty(T + 1, B, N, dtype=dtype) for _ in range(cell.n_states)]
        for array, first in zip(states, state0):
            array[0] = first
        Z = torch.empty(T + 1, B, N, dtype=dtype)
        Z[0] = z0
        V = torch.empty(T, B, N, dtype=dtype)
        has_rec = weight is not None
        wt = (weight.detach().t() if has_rec else torch.zeros(N, N, dtype=dtype)).contiguous()
        extra = [torch.empty(T, B, N, dtype=dtype) for _ in range(2)] if cell.name == "alif" else []
        forward_loop(drive.detach().contiguous().numpy(), wt.numpy(), has_rec, *np_params, *cell.constants,
                     *[s.numpy() for s in states], Z.numpy(), V.numpy(), *[e.numpy() for e in extra])
        membrane = extra[0] if cell.membrane == "pre" else states[0 if cell.membrane == "first" else 1][1:]
        ctx.cell, ctx.n_params, ctx.has_rec = cell, n_params, has_rec
        ctx.save_for_backward(weight if has_rec else None, *params, *states, Z, V, *extra[1:])
        ctx.set_materialize_grads(False)
        return (Z[1:], membrane, Z[-1].clone(), *[s[-1].clone() for s in states])

    @staticmethod
    def backward(ctx, gZ: Tensor | None, gM: Tensor | None, gz_last: Tensor | None, *g_states: Tensor | None):
        cell, n_params, has_rec = ctx.cell, ctx.n_params, ctx.has_rec
        saved = ctx.saved_tensors
        weight, params = saved[0], saved[1:1 + n_params]
        states = saved[1 + n_params:1 + n_params + cell.n_states]
        Z, V = saved[1 + n_params + cell.n_states], saved[2 + n_params + cell.n_states]
        extra = saved[3 + n_params + cell.n_states:]
        _, backward_loop = _loops(cell.name)
        T, B, N = V.shape
        dtype = V.dtype

        def zeros_or(g: Tensor | None, shape) -> Tensor:
            return torch.zeros(shape, dtype=dtype) if g is None else g.detach().to(dtype).contiguous().clone()

        kind, k = cell.surrogate.compiled()
        S = cell.surrogate.derivative(V).contiguous() if kind == 0 else torch.zeros(1, 1, 1, dtype=dtype)
        k = torch.tensor(list(k) + [0.0] * (4 - len(k)), dtype=torch.float64).numpy()
        gZ_, gM_ = zeros_or(gZ, (T, B, N)), zeros_or(gM, (T, B, N))
        adjoints = [zeros_or(g, (B, N)) for g in g_states] + [zeros_or(gz_last, (B, N))]
        GI = torch.empty(T, B, N, dtype=dtype)
        w = (weight.detach() if has_rec else torch.zeros(N, N, dtype=dtype)).contiguous()
        np_params = [p.detach().to(dtype).expand(N).contiguous().numpy() for p in params]
        constants = cell.constants
        if cell.name == "alif":  # (W, has_rec, alpha, rho, b0, beta, U, A, Z, I, S, ...)
            args = [*[s.numpy() for s in states], Z.numpy(), extra[0].numpy()]
        else:  # the forward's constants minus theta (unused in the backward)
            constants = tuple(k for j, k in enumerate(constants) if j != _THETA_INDEX[cell.name])
            args = [s.numpy() for s in states]
        param_grads = backward_loop(w.numpy(), has_rec, *np_params, *constants, *args, kind, k, S.numpy(), V.numpy(), gZ_.numpy(),
                                    gM_.numpy(), *[a.numpy() for a in adjoints], GI.numpy())
        needs = ctx.needs_input_grad[5:5 + n_params]
        grads_params = [_reduce_to(torch.from_numpy(g), p) if need else None
                        for g, p, need in zip(param_grads, params, needs)]
        g_weight = None
        if has_rec and ctx.needs_input_grad[3]:
            g_weight = GI.reshape(-1, N).t() @ Z[:-1].reshape(-1, N)
        g_state0 = adjoints[:-1]
        return (None, None, GI, g_weight, adjoints[-1], *grads_params, *g_state0)


_THETA_INDEX = {"brf": 1, "bhrf": 1}  # position of theta in the forward constants (gamma, theta, ...)


def _reduce_to(grad: Tensor, like: Tensor) -> Tensor:
    """A per-neuron gradient ``[N]`` in the shape and dtype of its parameter (summed for a scalar)."""
    return (grad.sum() if like.dim() == 0 else grad).to(like.dtype)


def run_cell(cell: Cell, drive: Tensor, weight: Tensor | None, z0: Tensor, params: tuple[Tensor, ...],
             state: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
    """Spikes ``[T, B, N]``, membrane ``[T, B, N]``, final spikes ``[B, N]`` and final state."""
    Z, membrane, z_last, *final = _FusedCell.apply(cell, len(params), drive, weight, z0, *params, *state)
    return Z, membrane, z_last, tuple(final)
