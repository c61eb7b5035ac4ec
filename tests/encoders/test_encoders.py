from __future__ import annotations

import pytest
import torch

from encoders.latency import LatencyEncoder
from encoders.rate import RateEncoder
from network.events import SpikeTimes
from settings.errors import ConfigError
from settings.registries import ENCODERS
from settings.schema import validate
from tools.seeding import torch_generator


def test_latency_times_follow_the_formula():
    enc = LatencyEncoder(T=500)
    x = torch.tensor([[0.0, 0.5, 1.0, 0.999, 2.0]])
    times = enc.times(x)
    assert times.tolist() == [[0, 249, 499, 498, 499]]  # floor(x * (T - 1)), clipped at x_max
    early = LatencyEncoder(T=500, direction="early").times(x)
    assert early.tolist() == [[499, 249, 0, 0, 0]]


def test_latency_silent_inputs_and_dense_output():
    enc = LatencyEncoder(T=10, silent_below=0.1, output="dense")
    raster = enc.encode(torch.tensor([[0.05, 0.5]]))
    assert raster.shape == (10, 1, 2)
    assert raster[:, 0, 0].sum() == 0 and raster[4, 0, 1] == 1 and raster.sum() == 1
    events = LatencyEncoder(T=10, silent_below=0.1).encode(torch.tensor([[0.05, 0.5]]))
    assert isinstance(events, SpikeTimes) and events.times.tolist() == [[-1, 4]]


def test_rate_encoder_is_deterministic_under_a_seed_and_has_the_right_rate():
    enc = RateEncoder(T=2000, gain=0.4)
    x = torch.tensor([[0.0, 0.5, 1.0]])
    a = enc.encode(x, torch_generator(7, "encode"))
    b = enc.encode(x, torch_generator(7, "encode"))
    c = enc.encode(x, torch_generator(8, "encode"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    rates = a[:, 0].mean(dim=0)
    assert rates[0] == 0
    assert abs(float(rates[1]) - 0.2) < 0.03 and abs(float(rates[2]) - 0.4) < 0.03


def test_rate_encoder_max_rate_and_regular_mode():
    enc = RateEncoder(T=1000, max_rate_hz=100.0, dt=1.0, mode="regular")
    spikes = enc.encode(torch.tensor([[1.0, 0.5]]))
    assert spikes[:, 0, 0].sum() == 100 and spikes[:, 0, 1].sum() == 50  # 100 Hz over 1 s
    assert not enc.stochastic


def test_T_is_a_duration_in_ms_of_T_over_dt_steps():
    """specs/tempotron.md: ``t_i = floor(x_i / x_max * (L - 1))`` with ``L = T / dt``."""
    enc = LatencyEncoder(T=500.0, dt=0.5)
    assert enc.steps == 1000
    assert enc.times(torch.tensor([[0.5, 1.0]])).tolist() == [[499, 999]]
    assert enc.encode(torch.tensor([[0.5]])).T == 1000
    assert RateEncoder(T=20.0, dt=0.25, mode="regular").encode(torch.ones(1, 3)).shape == (80, 1, 3)


def test_env_dt_reaches_the_encoder_and_T_must_be_whole_steps():
    env = {"T": 500.0, "dt": 0.5}
    assert validate({"type": "LatencyEncoder"}, ENCODERS, "encoder", env=env)["dt"] == 0.5
    with pytest.raises(ConfigError) as info:
        validate({"type": "RateEncoder"}, ENCODERS, "encoder", env={"T": 500.0, "dt": 0.3})
    assert "encoder.T 500 ms is not a whole number of dt = 0.3 ms steps" in str(info.value)
