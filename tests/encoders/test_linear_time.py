"""LinearTimeEncoder: t = t_early + v (t_late - t_early), clipping, the inverted MNIST code."""
from __future__ import annotations

import pytest
import torch

from data.mnist import MNIST5k
from encoders.linear_time import LinearTimeEncoder
from network.events import ContinuousSpikes
from settings.errors import ConfigError
from settings.registries import ENCODERS
from settings.schema import build, validate


def test_times_follow_the_formula_with_the_published_defaults():
    enc = build(validate({"type": "LinearTimeEncoder"}, ENCODERS, "encoder"), ENCODERS)
    x = torch.tensor([[0.0, 0.5, 1.0, 0.25]], dtype=torch.float64)
    out = enc.encode(x)
    assert isinstance(out, ContinuousSpikes) and out.times.dtype == torch.float64
    # 0.15 + v * 1.85
    assert torch.allclose(out.times, torch.tensor([[0.15, 1.075, 2.0, 0.6125]], dtype=torch.float64), rtol=0,
                          atol=1e-15)
    assert bool(out.fired().all())


def test_input_range_scales_and_clips():
    enc = LinearTimeEncoder(t_early=1.0, t_late=3.0, x_min=-2.0, x_max=2.0)
    times = enc.times(torch.tensor([[-5.0, -2.0, 0.0, 1.0, 2.0, 7.0]]))
    assert times.dtype == torch.float32
    assert times.tolist() == [[1.0, 1.0, 2.0, 2.5, 3.0, 3.0]]


def test_inverted_code_puts_bright_pixels_first():
    enc = LinearTimeEncoder(invert=True)
    times = enc.times(torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64))
    assert torch.allclose(times, torch.tensor([[0.15, 2.0, 1.075]], dtype=torch.float64), rtol=0, atol=1e-15)
    uint8 = LinearTimeEncoder(invert=True, x_max=255.0).times(torch.tensor([[255, 0]], dtype=torch.uint8))
    assert uint8.dtype == torch.float32 and uint8.tolist() == [[pytest.approx(0.15), 2.0]]


def test_mnist5k_pixels_are_in_the_unit_interval_so_the_defaults_span_t_early_to_t_late():
    """MNIST5k with ``normalize`` gives pixels in [0, 1]: the inverted code maps the brightest pixel
    (1.0) to t_early and the background (0.0) to t_late."""
    splits = MNIST5k(val_fraction=0.1, test_fraction=0.1).load(0)
    x = splits.test.x
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    times = LinearTimeEncoder(invert=True).encode(x).times
    assert times.shape == x.shape
    assert float(times.min()) == pytest.approx(0.15) and float(times.max()) == pytest.approx(2.0)
    assert torch.equal(times[x == 0], torch.full_like(times[x == 0], 2.0))


def test_encoding_is_deterministic():
    enc = LinearTimeEncoder()
    x = torch.rand(5, 4)
    assert torch.equal(enc.encode(x).times, enc.encode(x).times) and not enc.stochastic


@pytest.mark.parametrize("spec,message", [
    ({"t_early": 2.0, "t_late": 1.0}, r"encoder\.t_late must be > t_early = 2, got 1"),
    ({"x_min": 1.0, "x_max": 1.0}, r"encoder\.x_max must be > x_min = 1, got 1"),
    ({"t_early": -0.1}, r"encoder\.t_early"),
])
def test_bad_parameters_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate({"type": "LinearTimeEncoder", **spec}, ENCODERS, "encoder")
