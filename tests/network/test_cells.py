"""The fused recurrent cells (RF, BRF, BHRF, ALIF) against the step-by-step autograd loop of the
same equations: identical spikes and membranes, and gradients equal to 1e-8 in float64 for the
input and recurrent weights, the bias, every per-neuron parameter and the initial state."""
from __future__ import annotations

import pytest
import torch

from network.kernels.resonators import ALIFKernel, BRFKernel, RFKernel, divergence_boundary
from network.recurrent import Recurrent
from settings.registries import KERNELS, LAYERS
from settings.schema import build, validate

T, B, IN, N = 60, 3, 4, 7

CASES = {
    "RF": ({"type": "RFKernel"}, 40.0),
    "RF linear": ({"type": "RFKernel", "decay": "linear"}, 40.0),
    "BRF": ({"type": "BRFKernel"}, 40.0),
    "BRF linear": ({"type": "BRFKernel", "decay": "linear"}, 40.0),
    "BRF ECG init": ({"type": "BRFKernel", "omega": {"type": "Uniform", "low": 3, "high": 5}}, 60.0),
    "BHRF": ({"type": "BHRFKernel"}, 60.0),
    "ALIF": ({"type": "ALIFKernel"}, 3.0),
    "ALIF linear": ({"type": "ALIFKernel", "decay": "linear", "tau_m": {"type": "Normal", "mean": 5, "std": 1},
                     "tau_adp": {"type": "Normal", "mean": 20, "std": 2}}, 3.0),
    "ALIF fixed taus": ({"type": "ALIFKernel", "learn": [], "tau_m": 4.0, "tau_adp": 30.0}, 3.0),
}


def layer_pair(kernel: dict) -> tuple[Recurrent, Recurrent]:
    layers = []
    for fused in (True, False):
        torch.manual_seed(0)
        spec = validate({"type": "Recurrent", "out_features": N, "kernel": {**kernel, "fused": fused}}, LAYERS, "layer")
        layers.append(build(spec, LAYERS, in_features=IN).double())
    return layers[0], layers[1]


def gradients(layer: Recurrent, x: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor], state=None):
    x = x.clone().requires_grad_()
    trace = layer(x, state)
    w_out, w_membrane = weights
    loss = (trace.out * w_out).sum() + (trace.membrane * w_membrane).sum() + trace.state.z.sum()
    leaves = [x] + [p for _, p in sorted(layer.named_parameters())]
    if state is not None:
        leaves += [t for t in state.kernel if t.requires_grad]
    return trace, torch.autograd.grad(loss, leaves, allow_unused=True)


@pytest.mark.parametrize("case", CASES)
def test_fused_cell_equals_step_by_step_autograd_in_float64(case: str) -> None:
    kernel, scale = CASES[case]
    fused, stepped = layer_pair(kernel)
    torch.manual_seed(1)
    x = scale * torch.rand(T, B, IN, dtype=torch.float64)
    weights = (torch.randn(T, B, N, dtype=torch.float64), 0.1 * torch.randn(T, B, N, dtype=torch.float64))
    trace_f, grads_f = gradients(fused, x, weights)
    trace_s, grads_s = gradients(stepped, x, weights)
    assert torch.equal(trace_f.out, trace_s.out)
    torch.testing.assert_close(trace_f.membrane, trace_s.membrane, rtol=0, atol=1e-12)
    spikes = trace_f.out.sum().item()
    assert 0 < spikes < trace_f.out.numel()  # the case fires, but not everywhere: the gradients see both
    names = ["input"] + [name for name, _ in sorted(fused.named_parameters())]
    for name, g_f, g_s in zip(names, grads_f, grads_s):
        assert g_s is not None and g_f is not None, name
        torch.testing.assert_close(g_f, g_s, rtol=1e-8, atol=1e-8, msg=f"{case}: d/d{name}")
        assert g_s.abs().max() > 0, name


@pytest.mark.parametrize("case", ["BRF", "BHRF", "ALIF"])
def test_gradient_reaches_the_initial_state_and_chunks_continue_the_sequence(case: str) -> None:
    kernel, scale = CASES[case]
    fused, stepped = layer_pair(kernel)
    torch.manual_seed(2)
    x = scale * torch.rand(T, B, IN, dtype=torch.float64)
    first = stepped(x[: T // 2])
    # the kernel's own copy of the last spikes (ALIF keeps one) is the layer's z: no second leaf
    kernel_state = {name: t.detach().clone().requires_grad_(name != "z")
                    for name, t in first.state.kernel._asdict().items()}
    state = type(first.state)(first.state.z.detach(), type(first.state.kernel)(**kernel_state))
    weights = (torch.randn(T // 2, B, N, dtype=torch.float64), torch.randn(T // 2, B, N, dtype=torch.float64))
    whole = fused(x)
    trace_f, grads_f = gradients(fused, x[T // 2:], weights, state)
    trace_s, grads_s = gradients(stepped, x[T // 2:], weights, state)
    assert torch.equal(trace_f.out, whole.out[T // 2:])
    for g_f, g_s in zip(grads_f, grads_s):
        if g_s is None:
            continue
        torch.testing.assert_close(g_f, g_s, rtol=1e-8, atol=1e-8)


def test_float32_fused_cell_matches_float64_reference() -> None:
    fused, stepped = layer_pair({"type": "BRFKernel"})
    fused = fused.float()
    torch.manual_seed(3)
    x = 40 * torch.rand(T, B, IN, dtype=torch.float64)
    out32 = fused(x.float())
    out64 = stepped(x)
    torch.testing.assert_close(out32.membrane.double(), out64.membrane, rtol=1e-4, atol=1e-4)


def test_truncated_bptt_cuts_the_gradient_at_chunk_borders() -> None:
    kernel = {"type": "BRFKernel", "fused": True}
    torch.manual_seed(0)
    spec = validate({"type": "Recurrent", "out_features": N, "kernel": kernel, "tbptt": 20}, LAYERS, "layer")
    layer = build(spec, LAYERS, in_features=IN).double()
    x = (40 * torch.rand(T, B, IN, dtype=torch.float64)).requires_grad_()
    trace = layer(x)
    untruncated = build({**spec, "tbptt": None}, LAYERS, in_features=IN).double()
    untruncated.load_state_dict(layer.state_dict())
    assert torch.equal(untruncated(x).out, trace.out)  # the forward is the same sequence
    (grad,) = torch.autograd.grad(trace.membrane[-1].sum(), [x])
    assert grad[:40].abs().max() == 0 and grad[40:].abs().max() > 0


def test_brf_starts_at_the_divergence_boundary_and_rf_uses_minus_abs_b_offset() -> None:
    brf = build(validate({"type": "BRFKernel", "omega": 50.0, "b_offset": 0.5, "learn": []}, KERNELS, "k"), KERNELS,
                size=2)
    p = divergence_boundary(torch.tensor(50.0), 0.01)
    assert abs(p.item() - (-1 + (1 - 0.25) ** 0.5) / 0.01) < 1e-4  # -13.397...
    state = brf.initial_state(1)
    torch.testing.assert_close(brf.damping(state.q), torch.full((1, 2), p.item() - 0.5))
    rf = RFKernel(size=2, omega=50.0, b_offset=0.5, learn=[])
    assert rf.damping().item() == -0.5
    assert ALIFKernel(size=3).tau_m.requires_grad and isinstance(brf, BRFKernel)


def test_rf_single_step_by_hand() -> None:
    rf = RFKernel(size=1, omega=10.0, b_offset=2.0, learn=[], delta=0.1)
    state = rf.initial_state(1, torch.float64)
    state = type(state)(torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64),
                        state.q.double())
    z, x, state = rf.step_trace(torch.tensor([[3.0]], dtype=torch.float64), state)
    # x' = 1 + 0.1 (-2 * 1 - 10 * 0.5 + 3) = 0.6;  y' = 0.5 + 0.1 (10 * 1 - 2 * 0.5) = 1.4
    assert abs(x.item() - 0.6) < 1e-12 and abs(state.y.item() - 1.4) < 1e-12 and z.item() == 0.0


def test_compiled_surrogate_slopes_equal_their_derivative() -> None:
    import numpy as np

    from network.kernels.cell_loops import slope
    from settings.registries import SURROGATES

    v = torch.linspace(-4, 4, 161, dtype=torch.float64)
    dummy = np.zeros((1, 1, 1))
    for name in SURROGATES.names():
        surrogate = build({"type": name}, SURROGATES)
        kind, k = surrogate.compiled()
        assert kind > 0, f"{name} has no compiled slope: fused cells would fall back to the slow path"
        params = np.array(list(k) + [0.0] * (4 - len(k)))
        compiled = torch.tensor([slope(kind, params, dummy, 0, 0, 0, float(x)) for x in v], dtype=torch.float64)
        torch.testing.assert_close(compiled, surrogate.derivative(v), rtol=1e-12, atol=1e-14, msg=name)


def test_a_surrogate_without_compiled_slope_uses_its_derivative() -> None:
    from network.surrogates import Surrogate

    class Bump(Surrogate):
        def derivative(self, x: torch.Tensor) -> torch.Tensor:
            return 1.0 / (1.0 + x * x)

    fused, stepped = layer_pair({"type": "BRFKernel"})
    fused.kernel.surrogate = stepped.kernel.surrogate = Bump()
    x = 40 * torch.rand(T, B, IN, dtype=torch.float64)
    weights = (torch.randn(T, B, N, dtype=torch.float64), torch.zeros(T, B, N, dtype=torch.float64))
    for g_f, g_s in zip(gradients(fused, x, weights)[1], gradients(stepped, x, weights)[1]):
        torch.testing.assert_close(g_f, g_s, rtol=1e-8, atol=1e-8)


def test_leaky_integrator_readout_decays_and_parametrizations() -> None:
    from network.layers import LayerTrace
    from settings.registries import READOUTS

    def readout(**extra):
        torch.manual_seed(0)
        return build(validate({"type": "LeakyIntegrator", "out_features": 2, "tau": 4.0, "learn_tau": True,
                               "reduce": "last", **extra}, READOUTS, "readout"), READOUTS, in_features=3).double()

    z = torch.rand(5, 1, 3, dtype=torch.float64)
    trace = LayerTrace(z, z, z, None, True)
    plain, linear, sigmoid = readout(), readout(decay="linear"), readout(parametrization="sigmoid")
    for model, alpha in ((plain, torch.exp(torch.tensor(-0.25))), (linear, torch.tensor(0.75)),
                         (sigmoid, torch.exp(torch.tensor(-0.25)))):
        drive = z @ model.weight.detach().T
        o = torch.zeros(1, 2, dtype=torch.float64)
        for t in range(5):
            o = alpha.double() * o + (1 - alpha.double()) * drive[t]
        torch.testing.assert_close(model(trace).scores.detach(), o)
    assert abs(torch.sigmoid(sigmoid.kernel.tau).mean().item() - torch.exp(torch.tensor(-0.25)).item()) < 1e-6
    per_output = readout(tau={"type": "Normal", "mean": 20.0, "std": 5.0})
    assert per_output.kernel.tau.shape == (2,) and per_output.kernel.tau.requires_grad


def test_brf_at_the_divergence_boundary_keeps_its_amplitude_and_rf_grows() -> None:
    """Free oscillation (no input, no spikes: threshold out of reach): with b' = 0 the BRF damping
    p(omega) puts the Euler step exactly on the unit circle, |1 + delta (p + i omega)| = 1, so
    |u| stays constant; the undamped RF step has modulus sqrt(1 + (delta omega)^2) > 1 and grows."""
    omega = torch.tensor([10.0, 40.0, 90.0], dtype=torch.float64)
    for kernel, growth in ((BRFKernel, torch.ones(3, dtype=torch.float64)),
                           (RFKernel, torch.sqrt(1 + (0.01 * omega) ** 2))):
        cell = kernel(size=3, omega=0.0, b_offset=0.0, learn=["omega"], theta=1e9).double()
        with torch.no_grad():
            cell.omega.copy_(omega)
        state = type(cell.initial_state(1))(torch.full((1, 3), 0.5, dtype=torch.float64),
                                            torch.zeros(1, 3, dtype=torch.float64),
                                            torch.zeros(1, 3, dtype=torch.float64))
        trace = cell.trace(torch.zeros(200, 1, 3, dtype=torch.float64), state)
        modulus = torch.sqrt(trace.state.x ** 2 + trace.state.y ** 2)[0]
        torch.testing.assert_close(modulus, 0.5 * growth ** 200, rtol=1e-9, atol=0)


def test_a_signal_during_a_compiled_loop_is_an_interrupt_not_a_failure() -> None:
    """SIGTERM (tools.signals.Terminated, a KeyboardInterrupt) handled while numba ran a loop
    reaches Python as ``SystemError: ... returned a result with an exception set`` caused by the
    interrupt (seen on a PS-MNIST run that was then marked FAILED); the cells re-raise the
    interrupt itself, so the run is marked INTERRUPTED and resumes. Other errors pass unchanged."""
    from network.kernels.cells import _interruptible
    from tools.signals import Terminated

    def interrupted_loop():
        try:
            raise Terminated("received signal SIGTERM")
        except Terminated as exc:
            raise SystemError("CPUDispatcher(<function brf_backward>) returned a result with an exception set") from exc

    def broken_loop():
        raise SystemError("something else")

    with pytest.raises(Terminated):
        _interruptible(interrupted_loop)()
    with pytest.raises(SystemError, match="something else"):
        _interruptible(broken_loop)()
    assert _interruptible(lambda a, b: a + b)(2, 3) == 5
