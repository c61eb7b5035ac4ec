"""The Recurrent layer: one linear map on concat(x_t, z_{t-1}) stepped through any kernel."""
from __future__ import annotations

import pytest
import torch

from settings.registries import LAYERS
from settings.schema import build, validate

T, B, IN, OUT = 12, 2, 3, 4


def make(kernel: dict, **extra):
    torch.manual_seed(0)
    spec = validate({"type": "Recurrent", "out_features": OUT, "kernel": kernel, **extra}, LAYERS, "layer")
    return build(spec, LAYERS, in_features=IN).double()


def test_gradients_equal_finite_differences_in_float64() -> None:
    """With a smooth kernel (leaky integrator) the layer is differentiable: autograd = central FD
    for the weights, the bias and the input."""
    from torch.func import functional_call

    layer = make({"type": "LIKernel", "tau": 3.0})
    x = torch.randn(T, B, IN, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(T, B, OUT, dtype=torch.float64)

    def objective(weight: torch.Tensor, bias: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return (functional_call(layer, {"weight": weight, "bias": bias}, (inputs,)).out * weights).sum()

    start = (layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_(), x)
    assert torch.autograd.gradcheck(objective, start, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_lif_recurrent_layer_equals_the_equations_stepped_by_hand() -> None:
    layer = make({"type": "LIFKernel", "tau_m": 4.0, "reset": "soft"}, weight_init={"type": "Uniform", "low": -0.5,
                                                                                     "high": 1.5})
    x = (torch.rand(T, B, IN, dtype=torch.float64) < 0.5).double()
    trace = layer(x)
    alpha = torch.exp(torch.tensor(-1.0 / 4.0, dtype=torch.float64))
    u = torch.zeros(B, OUT, dtype=torch.float64)
    z = torch.zeros(B, OUT, dtype=torch.float64)
    W, b = layer.weight.detach(), layer.bias.detach()
    for t in range(T):
        current = torch.cat([x[t], z], dim=1) @ W.T + b
        u = alpha * u + (1 - alpha) * current
        z = (u >= 1.0).double()  # FastSigmoid's forward is the Heaviside step at v_th
        u = u - z
        torch.testing.assert_close(trace.out[t].detach(), z)
    assert trace.out.sum() > 0  # the case fires, so the recurrence is exercised
    assert trace.state.z.shape == (B, OUT)


def test_recurrent_mask_removes_that_fraction_of_recurrent_synapses() -> None:
    layer = make({"type": "LIFKernel"}, recurrent_mask=0.75)
    kept = float(layer.mask.mean())
    assert 0.1 < kept < 0.45
    assert torch.equal(layer.recurrent_weight == 0, layer.mask == 0)
    assert not any(name == "mask" for name, _ in layer.named_parameters())


@pytest.mark.parametrize("kernel", ["LIFKernel", "LIKernel", "DENKernel", "LeakyKernel", "SequentialDENKernel"])
def test_works_with_any_kernel_and_carries_its_state(kernel: str) -> None:
    layer = make({"type": kernel})
    x = torch.rand(T, B, IN, dtype=torch.float64)
    whole = layer(x)
    first = layer(x[: T // 2])
    second = layer(x[T // 2:], first.state)
    torch.testing.assert_close(torch.cat([first.out, second.out]), whole.out)
    assert whole.out.shape == whole.membrane.shape == (T, B, OUT)
