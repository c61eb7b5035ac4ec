"""Rate (Poisson), latency (log code, normalisation, image shapes) and population codes against
hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from encoders.latency import LatencyEncoder
from encoders.population import PopulationEncoder
from encoders.rate import RateEncoder
from settings.errors import ConfigError
from settings.registries import ENCODERS
from settings.schema import validate
from tools.seeding import torch_generator


def test_poisson_rate_is_one_minus_exp_of_rate_times_dt():
    enc = RateEncoder(T=4000, max_rate_hz=200.0, dt=1.0, mode="poisson")
    x = torch.tensor([[1.0, 0.5, 0.0]])
    p = enc.probability(x)
    assert torch.allclose(p, torch.tensor([[1 - math.exp(-0.2), 1 - math.exp(-0.1), 0.0]]))
    a, b = enc.encode(x, torch_generator(3, "e")), enc.encode(x, torch_generator(3, "e"))
    assert enc.stochastic and torch.equal(a, b) and a.shape == (4000, 1, 3)
    rates = a[:, 0].mean(dim=0)
    assert abs(float(rates[0]) - 0.1813) < 0.02 and abs(float(rates[1]) - 0.0952) < 0.02 and rates[2] == 0
    # a rate above 1000 / dt Hz is fine for a Poisson process: p = 1 - exp(-2)
    fast = validate({"type": "RateEncoder", "mode": "poisson", "max_rate_hz": 2000.0}, ENCODERS, "encoder")
    assert fast["max_rate_hz"] == 2000.0


def test_poisson_needs_a_rate():
    with pytest.raises(ConfigError, match=r"encoder\.max_rate_hz must be set for mode poisson"):
        validate({"type": "RateEncoder", "mode": "poisson"}, ENCODERS, "encoder")


def test_rate_codes_keep_an_image_shape():
    x = torch.rand(2, 1, 3, 3)
    for enc in (RateEncoder(T=6), RateEncoder(T=6, max_rate_hz=100.0, mode="poisson"), RateEncoder(T=6, mode="regular")):
        assert enc.encode(x, torch_generator(0, "e")).shape == (6, 2, 1, 3, 3)


def test_log_latency_is_the_rc_charging_time():
    """t = tau ln(v / (v - theta)) with tau = 5 ms, theta = 0.2 over 20 steps of 1 ms."""
    x = torch.tensor([[1.0, 0.5, 0.25, 0.21, 0.201, 0.2, 0.1]])
    enc = LatencyEncoder(T=20, code="log", tau=5.0, theta=0.2, direction="early")
    # 5 ln(1/0.8) = 1.12, 5 ln(0.5/0.3) = 2.55, 5 ln 5 = 8.05, 5 ln 21 = 15.2, 5 ln 201 = 26.5 (past
    # the window: last step); v <= theta never reaches the threshold
    assert enc.times(x).tolist() == [[1, 2, 8, 15, 19, -1, -1]]
    late = LatencyEncoder(T=20, code="log", tau=5.0, theta=0.2, direction="late")
    assert late.times(x).tolist() == [[18, 17, 11, 4, 0, -1, -1]]
    half = LatencyEncoder(T=20, dt=0.5, code="log", tau=5.0, theta=0.2, direction="early")
    assert half.times(x[:, :3]).tolist() == [[2, 5, 16]]  # floor(t / dt)


def test_linear_latency_bright_first_with_normalisation():
    enc = LatencyEncoder(T=11, direction="early", normalize=True)
    # (x - min) / (max - min) per sample: [0, 0.5, 1] -> floor((1 - v) 10); a constant sample is 0
    assert enc.times(torch.tensor([[2.0, 4.0, 6.0], [3.0, 3.0, 3.0]])).tolist() == [[10, 5, 0], [10, 10, 10]]
    # (T - 1)(1 - x) of the spec, without normalisation
    assert LatencyEncoder(T=11, direction="early").times(torch.tensor([[0.0, 0.25, 1.0]])).tolist() == [[10, 7, 0]]


def test_latency_images_give_one_spike_per_pixel_in_a_dense_raster():
    x = torch.rand(2, 1, 3, 3)
    enc = LatencyEncoder(T=10, direction="early", output="dense")
    raster = enc.encode(x)
    assert raster.shape == (10, 2, 1, 3, 3)
    assert torch.equal(raster.sum(dim=0), torch.ones(2, 1, 3, 3))
    assert torch.equal(raster.argmax(dim=0), enc.times(x))
    with pytest.raises(ValueError, match="output 'times' takes features"):
        LatencyEncoder(T=10).encode(x)


def test_population_gaussian_fields_by_hand():
    """3 neurons over [0, 1]: centres 0, 0.5, 1, sigma = 0.5 (width 1 spacing)."""
    enc = PopulationEncoder(neurons=3, width=1.0, T=11, min_response=0.2)
    x = torch.tensor([[0.5, 0.0]])
    r = enc.responses(x)
    e = math.exp(-0.5)  # a centre 0.5 away: exp(-0.25 / (2 * 0.25))
    assert torch.allclose(r, torch.tensor([[e, 1.0, e, 1.0, e, math.exp(-2.0)]], dtype=torch.float64))
    spikes = enc.encode(x)
    assert spikes.shape == (11, 1, 6) and enc.out_features(2) == 6
    # floor((1 - r) * 10): 3, 0, 3 for x = 0.5; 0, 3 and silent (r = 0.135 < 0.2) for x = 0
    assert spikes[:, 0].argmax(dim=0).tolist()[:5] == [3, 0, 3, 0, 3]
    assert spikes[:, 0].sum(dim=0).tolist() == [1, 1, 1, 1, 1, 0]


def test_population_images_grow_the_channel_axis_and_rate_code_is_seeded():
    x = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1)  # [B, C, H, W]
    enc = PopulationEncoder(neurons=3, width=1.0, T=11, min_response=0.0)
    spikes = enc.encode(x)
    assert spikes.shape == (11, 1, 6, 1, 1)
    # channel c gives channels 3c .. 3c + 2: the neuron centred on the value fires at step 0
    assert spikes[0, 0, :, 0, 0].tolist() == [1, 0, 0, 0, 0, 1]
    rate = PopulationEncoder(neurons=3, width=1.0, code="rate", gain=0.5, T=4000)
    a, b = rate.encode(x, torch_generator(5, "e")), rate.encode(x, torch_generator(5, "e"))
    assert rate.stochastic and torch.equal(a, b)
    expected = 0.5 * rate.responses(x)[0, :, 0, 0].float()
    assert torch.allclose(a[:, 0, :, 0, 0].mean(dim=0), expected, atol=0.03)


def test_population_range_is_checked():
    with pytest.raises(ConfigError, match=r"encoder\.x_max must be above x_min \(1\), got 0"):
        validate({"type": "PopulationEncoder", "x_min": 1.0, "x_max": 0.0}, ENCODERS, "encoder")
