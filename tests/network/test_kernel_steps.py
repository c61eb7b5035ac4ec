"""The kernel contract: every registered kernel steps (``initial_state``, ``step``), and its own
``trace`` (fused, exponential traces, ...) equals the loop over its steps, forward and gradients."""
from __future__ import annotations

import pytest
import torch

from settings.registries import KERNELS
from settings.schema import build, validate

T, B, N = 30, 3, 5
#: kernel specs that exercise each kernel's variants (spikes, resets, CUBA, learned constants)
SPECS = [
    {"type": "LIFKernel", "tau_m": 5.0},
    {"type": "LIFKernel", "tau_m": 5.0, "reset": "hard", "v_reset": 0.1},
    {"type": "LIFKernel", "tau_m": 5.0, "reset": "none"},
    {"type": "LIFKernel", "tau_m": 5.0, "tau_syn": 3.0, "learn": ["tau_m", "tau_syn"]},
    {"type": "LIFKernel", "tau_m": {"type": "Uniform", "low": 3.0, "high": 9.0}, "learn": ["tau_m"]},
    {"type": "LIKernel", "tau": 4.0, "learn_tau": True},
    {"type": "DENKernel", "tau_m": 15.0, "tau_s": 3.75},
    {"type": "SequentialDENKernel", "tau_m": 15.0, "tau_s": 3.75},
    {"type": "LeakyKernel", "tau": 6.0},
    {"type": "LeakyKernel", "tau": 6.0, "spike": True, "reset": True},
    {"type": "RFKernel", "delta": 0.2},
    {"type": "BRFKernel", "delta": 0.2, "omega": {"type": "Uniform", "low": 1.0, "high": 4.0}},
    {"type": "BHRFKernel", "delta": 0.2, "omega": {"type": "Uniform", "low": 1.0, "high": 4.0}},
    {"type": "ALIFKernel", "tau_m": 3.0, "tau_adp": 10.0, "learn": ["tau_m", "tau_adp"]},
]


def make(spec: dict):
    torch.manual_seed(0)
    return build(validate(spec, KERNELS, "kernel"), KERNELS, size=N).double()


def test_every_registered_kernel_is_covered() -> None:
    assert {spec["type"] for spec in SPECS} == set(KERNELS.names())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['type']}-{'-'.join(map(str, list(s.values())[1:]))}")
def test_trace_equals_the_loop_over_steps(spec: dict) -> None:
    kernel = make(spec)
    torch.manual_seed(1)
    x = (torch.rand(T, B, N, dtype=torch.float64) * 3).requires_grad_()
    fast = kernel.trace(x)
    slow = kernel.trace_steps(x)
    torch.testing.assert_close(fast.out, slow.out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.membrane, slow.membrane, rtol=1e-10, atol=1e-12)
    weights = torch.randn(T, B, N, dtype=torch.float64)
    params = [x, *kernel.parameters()]
    g_fast = torch.autograd.grad((fast.out * weights).sum() + fast.membrane.sum(), params, allow_unused=True)
    g_slow = torch.autograd.grad((slow.out * weights).sum() + slow.membrane.sum(), params, allow_unused=True)
    for a, b in zip(g_fast, g_slow):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("spec", SPECS[:1] + SPECS[5:7])
def test_a_sequence_in_chunks_equals_one_pass(spec: dict) -> None:
    """State is returned, never hidden: two halves with the state carried equal the whole."""
    kernel = make(spec)
    x = torch.rand(T, B, N, dtype=torch.float64) * 3
    whole = kernel.trace(x)
    first = kernel.trace(x[: T // 2])
    second = kernel.trace(x[T // 2:], first.state)
    torch.testing.assert_close(torch.cat([first.out, second.out]), whole.out)
    out, state = kernel.step(x[0])
    torch.testing.assert_close(out, whole.out[0])


def test_per_neuron_constants_from_an_initializer_are_drawn_per_neuron_and_trainable() -> None:
    kernel = make({"type": "LIFKernel", "tau_m": {"type": "Normal", "mean": 20.0, "std": 5.0}, "learn": ["tau_m"]})
    assert isinstance(kernel.tau_m, torch.nn.Parameter) and kernel.tau_m.shape == (N,)
    assert kernel.tau_m.std() > 0.5  # really drawn per neuron
    fixed = make({"type": "LIFKernel", "tau_m": {"type": "Normal", "mean": 20.0, "std": 5.0}})
    assert not isinstance(fixed.tau_m, torch.nn.Parameter) and fixed.tau_m.shape == (N,)
    assert "tau_m" in dict(fixed.named_buffers())
    scalar = make({"type": "LIFKernel", "tau_m": 20.0})
    assert scalar.tau_m.shape == ()


def test_learning_a_constant_the_kernel_lacks_is_a_config_error() -> None:
    from settings.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        validate({"type": "LIFKernel", "learn": ["tau_syn"]}, KERNELS, "kernel")
    assert "kernel.learn lists tau_syn, but tau_syn is not set" in str(info.value)
    with pytest.raises(ConfigError) as info:
        validate({"type": "LIFKernel", "learn": ["tau_x"]}, KERNELS, "kernel")
    assert "tau_m" in str(info.value) and "tau_x" in str(info.value)
