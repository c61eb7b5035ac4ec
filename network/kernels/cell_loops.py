"""Compiled time loops of the fused recurrent cells (numba, CPU): forward and reverse-time
backward of the BRF/RF, BHRF and ALIF recurrences of specs/resonators.md.

Imported only when a fused cell first runs (numba's import and compilation are paid once per
process; compiled code is cached next to this file). Arrays are time-major numpy views of torch
tensors: ``D [T, B, N]`` the feed-forward drive (``W_in x_t + bias``, computed outside in one
matrix product), states ``[T + 1, B, N]`` with the initial state at index 0, spikes ``Z [T + 1,
B, N]`` with the previous output ``z_0`` at index 0, and ``Wt`` the transposed recurrent weight
(``I_t = D_t + z_{t-1} Wt``). The surrogate slopes ``S [T, B, N]`` of the threshold arguments are
computed inside the backward loop for the registered surrogates (``slope``), or by the caller,
vectorised, for any other surrogate (kind 0, ``S [T, B, N]``).

Backward loops take the upstream gradients of the spikes ``gZ`` and of the membrane trace ``gM``
(``[T, B, N]``, zeros where unused) and the adjoints of the final state, walk time backwards, and
return the gradient of every drive ``GI`` (= dL/dD_t = dL/dI_t), the per-neuron parameter
gradients and the adjoints of the initial state. The recurrent weight's gradient,
``sum_t GI_t^T z_{t-1}``, is one matrix product the caller does afterwards.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@njit(cache=True, inline="always")
def _gauss(x, sigma):
    return math.exp(-0.5 * (x / sigma) ** 2) / (sigma * _SQRT_2PI)


@njit(cache=True)
def slope(kind, k, S, t, i, n, v):
    """The surrogate derivative at ``v`` (kinds and parameters ``k`` from
    ``network.surrogates.Surrogate.compiled``); kind 0 reads the precomputed ``S[t, i, n]``."""
    if kind == 0:
        return S[t, i, n]
    if kind == 1:  # DoubleGaussian (p, s1, s2, gamma)
        return k[3] * ((1.0 + k[0]) * _gauss(v, k[1]) - 2.0 * k[0] * _gauss(v, k[2]))
    if kind == 2:  # MultiGaussian (sigma, h, gamma)
        return k[2] * ((1.0 + k[1]) * _gauss(v, k[0]) - k[1] * _gauss(v - k[0], 6.0 * k[0])
                       - k[1] * _gauss(v + k[0], 6.0 * k[0]))
    if kind == 3:  # Gaussian (sigma, gamma)
        return k[1] * _gauss(v, k[0])
    if kind == 4:  # FastSigmoid (k)
        return 1.0 / (1.0 + k[0] * abs(v)) ** 2
    if kind == 5:  # ATan (a)
        return (k[0] / 2.0) / (1.0 + (math.pi * k[0] * v / 2.0) ** 2)
    if kind == 6:  # Triangle (width)
        return max(0.0, 1.0 - abs(v) / k[0]) / k[0]
    return k[1] * math.exp(-abs(v) / k[0])  # 7: Exponential (scale, gamma)


@njit(cache=True)
def _recurrent_input(D, Z, Wt, has_rec, t):
    if has_rec:
        return D[t] + np.dot(Z[t], Wt)
    return D[t].copy()


@njit(cache=True)
def brf_forward(D, Wt, has_rec, omega, p, c, gamma, theta, dt, balanced, linear, X, Y, Q, Z, V):
    """RF (``balanced`` False: ``b = -c``, threshold ``theta``) and BRF (``b_t = p - c - q_{t-1}``,
    threshold ``theta + q_{t-1}``, ``q_t = gamma q_{t-1} + z_t``); ``linear``: the damping is
    added as a constant (``b dt``) instead of ``b x dt``."""
    T, B, N = D.shape
    for t in range(T):
        current = _recurrent_input(D, Z, Wt, has_rec, t)
        for i in range(B):
            for n in range(N):
                x, y, q = X[t, i, n], Y[t, i, n], Q[t, i, n]
                b = p[n] - c[n] - q if balanced else -c[n]
                if linear:
                    xn = x + dt * (b - omega[n] * y + current[i, n])
                    yn = y + dt * (omega[n] * x + b)
                else:
                    xn = x + dt * (b * x - omega[n] * y + current[i, n])
                    yn = y + dt * (omega[n] * x + b * y)
                v = xn - theta - (q if balanced else 0.0)
                z = 1.0 if v > 0.0 else 0.0
                X[t + 1, i, n], Y[t + 1, i, n], V[t, i, n], Z[t + 1, i, n] = xn, yn, v, z
                Q[t + 1, i, n] = gamma * q + z if balanced else 0.0


@njit(cache=True)
def brf_backward(W, has_rec, omega, p, c, gamma, dt, balanced, linear, X, Y, Q, kind, k, S, V, gZ, gM, gx, gy, gq, gz, GI):
    """Reverse-time adjoints of :func:`brf_forward`; ``gx, gy, gq, gz`` enter as the final state's
    adjoints and leave as the initial state's. Returns ``(g_omega, g_p, g_c)`` per neuron."""
    T, B, N = V.shape
    g_omega, g_p, g_c = np.zeros(N, V.dtype), np.zeros(N, V.dtype), np.zeros(N, V.dtype)
    for t in range(T - 1, -1, -1):
        for i in range(B):
            for n in range(N):
                x, y, q = X[t, i, n], Y[t, i, n], Q[t, i, n]
                g_q_new = gq[i, n] if balanced else 0.0
                g_v = (gz[i, n] + gZ[t, i, n] + g_q_new) * slope(kind, k, S, t, i, n, V[t, i, n])
                g_xn = gx[i, n] + g_v + gM[t, i, n]
                g_yn = gy[i, n]
                b = p[n] - c[n] - q if balanced else -c[n]
                if linear:
                    g_x = g_xn + g_yn * dt * omega[n]
                    g_y = g_yn - g_xn * dt * omega[n]
                    g_b = dt * (g_xn + g_yn)
                else:
                    g_x = g_xn * (1.0 + dt * b) + g_yn * dt * omega[n]
                    g_y = g_yn * (1.0 + dt * b) - g_xn * dt * omega[n]
                    g_b = dt * (g_xn * x + g_yn * y)
                g_omega[n] += dt * (g_yn * x - g_xn * y)
                g_c[n] -= g_b
                if balanced:
                    g_p[n] += g_b
                    gq[i, n] = gamma * g_q_new - g_v - g_b
                gx[i, n], gy[i, n] = g_x, g_y
                GI[t, i, n] = dt * g_xn
        if has_rec:
            gz[:, :] = np.dot(GI[t], W)
        else:
            gz[:, :] = 0.0
    return g_omega, g_p, g_c


@njit(cache=True)
def bhrf_forward(D, Wt, has_rec, omega_sq, c, gamma, theta, dt, Vs, U, Q, Z, V):
    """BHRF: ``b = omega^2 dt / 2 + c + q``, ``v_t = v + dt u``, ``u_t = u + dt (I - 2 b u - omega^2 v)``,
    spike on ``u_t - theta - q``, ``q_t = gamma q + z_t`` (``Vs`` the positions, ``U`` the velocities)."""
    T, B, N = D.shape
    for t in range(T):
        current = _recurrent_input(D, Z, Wt, has_rec, t)
        for i in range(B):
            for n in range(N):
                v, u, q = Vs[t, i, n], U[t, i, n], Q[t, i, n]
                b = omega_sq[n] * dt / 2.0 + c[n] + q
                un = u + dt * (current[i, n] - 2.0 * b * u - omega_sq[n] * v)
                arg = un - theta - q
                z = 1.0 if arg > 0.0 else 0.0
                Vs[t + 1, i, n], U[t + 1, i, n], V[t, i, n], Z[t + 1, i, n] = v + dt * u, un, arg, z
                Q[t + 1, i, n] = gamma * q + z


@njit(cache=True)
def bhrf_backward(W, has_rec, omega_sq, c, gamma, dt, Vs, U, Q, kind, k, S, V, gZ, gM, gv, gu, gq, gz, GI):
    """Reverse-time adjoints of :func:`bhrf_forward`. Returns ``(g_omega_sq, g_c)``."""
    T, B, N = V.shape
    g_w2, g_c = np.zeros(N, V.dtype), np.zeros(N, V.dtype)
    for t in range(T - 1, -1, -1):
        for i in range(B):
            for n in range(N):
                v, u, q = Vs[t, i, n], U[t, i, n], Q[t, i, n]
                g_arg = (gz[i, n] + gZ[t, i, n] + gq[i, n]) * slope(kind, k, S, t, i, n, V[t, i, n])
                g_un = gu[i, n] + g_arg + gM[t, i, n]
                g_vn = gv[i, n]
                b = omega_sq[n] * dt / 2.0 + c[n] + q
                g_b = -2.0 * dt * u * g_un
                g_w2[n] += -dt * v * g_un + g_b * dt / 2.0
                g_c[n] += g_b
                gq[i, n] = gamma * gq[i, n] - g_arg + g_b
                gu[i, n] = g_un * (1.0 - 2.0 * b * dt) + g_vn * dt
                gv[i, n] = g_vn - g_un * dt * omega_sq[n]
                GI[t, i, n] = dt * g_un
        if has_rec:
            gz[:, :] = np.dot(GI[t], W)
        else:
            gz[:, :] = 0.0
    return g_w2, g_c


@njit(cache=True)
def alif_forward(D, Wt, has_rec, alpha, rho, b0, beta, U, A, Z, V, P, I):
    """ALIF: ``a_t = rho a + (1 - rho) z_{t-1}``, ``theta_t = b0 + beta a_t``, ``p_t = alpha u +
    (1 - alpha) I_t``, ``z_t = H(p_t - theta_t)``, ``u_t = p_t - z_t theta_t`` (``P`` the pre-reset
    membrane, ``I`` the input currents, kept for the backward)."""
    T, B, N = D.shape
    for t in range(T):
        current = _recurrent_input(D, Z, Wt, has_rec, t)
        for i in range(B):
            for n in range(N):
                a = rho[n] * A[t, i, n] + (1.0 - rho[n]) * Z[t, i, n]
                threshold = b0 + beta * a
                pre = alpha[n] * U[t, i, n] + (1.0 - alpha[n]) * current[i, n]
                z = 1.0 if pre - threshold > 0.0 else 0.0
                A[t + 1, i, n], P[t, i, n], V[t, i, n], Z[t + 1, i, n] = a, pre, pre - threshold, z
                U[t + 1, i, n] = pre - z * threshold
                I[t, i, n] = current[i, n]


@njit(cache=True)
def alif_backward(W, has_rec, alpha, rho, b0, beta, U, A, Z, I, kind, k, S, V, gZ, gM, gu, ga, gz, GI):
    """Reverse-time adjoints of :func:`alif_forward`. Returns ``(g_alpha, g_rho)``."""
    T, B, N = V.shape
    g_alpha, g_rho = np.zeros(N, V.dtype), np.zeros(N, V.dtype)
    direct = np.zeros_like(gz)  # dL/dz_{t-1} through the adaptation
    for t in range(T - 1, -1, -1):
        for i in range(B):
            for n in range(N):
                threshold = b0 + beta * A[t + 1, i, n]
                z = Z[t + 1, i, n]
                g_u = gu[i, n]
                g_z = gz[i, n] + gZ[t, i, n] - g_u * threshold
                g_theta = -g_u * z
                g_v = g_z * slope(kind, k, S, t, i, n, V[t, i, n])
                g_pre = g_u + g_v + gM[t, i, n]
                g_theta -= g_v
                g_alpha[n] += g_pre * (U[t, i, n] - I[t, i, n])
                GI[t, i, n] = (1.0 - alpha[n]) * g_pre
                gu[i, n] = alpha[n] * g_pre
                g_a = ga[i, n] + beta * g_theta
                g_rho[n] += g_a * (A[t, i, n] - Z[t, i, n])
                direct[i, n] = g_a * (1.0 - rho[n])
                ga[i, n] = rho[n] * g_a
        if has_rec:
            gz[:, :] = np.dot(GI[t], W) + direct
        else:
            gz[:, :] = direct
    return g_alpha, g_rho
