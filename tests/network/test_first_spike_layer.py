"""FirstSpikeLIF as a layer (bias spikes, delays, noise, errors), the spike-time losses with
their class-selection rules, WeightBumping, and a short Yin-Yang training through the pipeline."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import network  # noqa: F401  (registers the components)
from network.events import ContinuousSpikes
from network.first_spike.delays import AxonalDelay, DendriticDelay, SynapticDelay
from network.first_spike.layer import FirstSpikeLIF
from network.first_spike.losses import ShiftInvariantMSE, TargetTimeMSE, TTFSLoss
from network.first_spike.spike_times import closed_form_times
from network.layers import LayerTrace
from network.losses import LossInput
from network.network import Network, NetworkOutput
from network.readouts import ReadoutOutput
from pipeline.batches import BatchResult
from pipeline.callbacks.weight_bumping import WeightBumping
from settings import Factory
from settings.errors import ConfigError
from settings.registries import DELAYS, LAYERS, READOUTS

F64 = torch.float64
INF = math.inf


def layer(**kwargs) -> FirstSpikeLIF:
    torch.manual_seed(0)
    return FirstSpikeLIF(in_features=3, out_features=4, weight_init={"type": "Normal", "mean": 1.5, "std": 0.5},
                         **kwargs).double()


def inputs() -> ContinuousSpikes:
    return ContinuousSpikes(torch.tensor([[0.1, 0.4, 0.9], [0.3, INF, 0.2]], dtype=F64))


def test_layer_gives_the_closed_form_times_in_units_of_tau_s() -> None:
    lay = layer(tau_s=2.0, tau_m=4.0)
    out = lay(inputs())
    assert isinstance(out.out, ContinuousSpikes) and out.membrane is None and out.spiking
    expected = 2.0 * closed_form_times((inputs().times / 2.0).unsqueeze(1), lay.weight.detach(),
                                       torch.tensor([[1.0 / 2.0]], dtype=F64), 2.0)
    torch.testing.assert_close(out.out.times, expected)


def test_bias_spikes_are_extra_inputs_at_fixed_times() -> None:
    lay = layer(bias_times=[0.9])
    assert lay.weight.shape == (4, 4)
    t = lay.input_times(inputs())
    assert t.shape == (2, 1, 4) and torch.all(t[:, 0, 3] == 0.9)
    plain = closed_form_times(t, lay.weight.detach(), torch.tensor([[1.0]], dtype=F64), 1.0)
    torch.testing.assert_close(lay(inputs()).out.times, plain)


def test_dendritic_delay_shifts_each_output_by_its_delay() -> None:
    plain, delayed = layer(), layer(delay=Factory(DELAYS, {"type": "DendriticDelay", "parametrization": "shift", "shift": 0.0}, "delay"))
    with torch.no_grad():
        delayed.weight.copy_(plain.weight)
        delayed.delay.theta.copy_(torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=F64))
    shifted = plain(inputs()).out.times + delayed.delay.delays()
    torch.testing.assert_close(delayed(inputs()).out.times, shifted)


@pytest.mark.parametrize("kind", [SynapticDelay, AxonalDelay, DendriticDelay])
def test_delay_gradients_equal_finite_differences(kind: type) -> None:
    lay = layer(delay=Factory(DELAYS, {"type": kind.__name__, "parametrization": "sigmoid", "scale": 1.0, "init_std": 1.0}, "delay"))
    x = inputs()
    coef = torch.tensor([[1.0, -0.5, 2.0, 0.3], [0.7, 1.1, -1.0, 0.2]], dtype=F64)

    def objective() -> torch.Tensor:
        T = lay(x).out.times
        return torch.where(torch.isfinite(T), T * coef, torch.zeros_like(T)).sum()

    lay.zero_grad()
    objective().backward()
    analytic = lay.delay.theta.grad.clone()
    assert analytic.abs().sum() > 0
    numeric = torch.zeros_like(analytic)
    with torch.no_grad():
        for k in range(analytic.numel()):
            theta = lay.delay.theta.view(-1)
            theta[k] += 1e-6
            up = objective()
            theta[k] -= 2e-6
            down = objective()
            theta[k] += 1e-6
            numeric.view(-1)[k] = (up - down) / 2e-6
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_delay_parametrizations() -> None:
    torch.manual_seed(1)
    for name, check in [("sigmoid", lambda d: (d >= 0.2).all() and (d <= 1.2).all()),
                        ("clip", lambda d: (d >= 0.2).all() and (d <= 1.2).all())]:
        delay = AxonalDelay(in_features=50, out_features=1, parametrization=name, shift=0.2, scale=1.0, init_std=3.0)
        with torch.no_grad():
            delay.theta.mul_(5.0).sub_(1.0)
        assert check(delay.delays())
    shift = AxonalDelay(in_features=3, out_features=1, parametrization="shift", shift=0.5)
    with torch.no_grad():
        shift.theta.copy_(torch.tensor([-2.0, 0.0, 3.0]))
    assert shift.delays().tolist() == [-1.5, 0.5, 3.5]


def test_noise_only_while_training() -> None:
    lay = layer(time_noise=0.05, threshold_noise=0.05)
    lay.eval()
    a, b = lay(inputs()).out.times, lay(inputs()).out.times
    assert torch.equal(a, b)
    lay.train()
    assert not torch.equal(lay(inputs()).out.times, a)


def test_bad_tau_ratio_and_raster_input_are_refused() -> None:
    from settings.registries import LAYERS
    from settings.schema import validate

    with pytest.raises(ConfigError, match=r"model.layers\[0\].tau_m.*tau_m / tau_s must be 1 or 2"):
        validate({"type": "FirstSpikeLIF", "out_features": 3, "tau_m": 1.5}, LAYERS, "model.layers[0]")
    with pytest.raises(TypeError, match="continuous spike times"):
        layer()(torch.zeros(5, 2, 3, dtype=F64))


def record(times: list[list[float]], targets: list[int]) -> LossInput:
    t = torch.tensor(times, dtype=F64)
    return LossInput(-t, torch.tensor(targets), times=t)


def test_ttfs_loss_by_hand() -> None:
    batch = record([[1.0, 1.2, 2.0]], [1])
    xi, alpha, beta = 0.2, 0.005, 1.0
    logits = [-1.0 / xi, -1.2 / xi, -2.0 / xi]
    nll = -(logits[1] - math.log(sum(math.exp(v) for v in logits)))
    expected = nll + alpha * (math.exp(1.2 / beta) - 1)
    assert TTFSLoss()(batch).item() == pytest.approx(expected, rel=1e-12)
    assert TTFSLoss().predict(batch).tolist() == [0]


def test_silent_outputs_never_win_and_cost_the_missing_loss() -> None:
    batch = record([[INF, INF, INF], [INF, 0.5, INF], [0.9, INF, 1.1]], [0, 1, 1])
    for loss in (TTFSLoss(), ShiftInvariantMSE()):
        assert loss.predict(batch).tolist() == [-1, 1, 0]
    value = TTFSLoss(missing_loss=100.0)(batch)
    logits = torch.tensor([-0.9, -1.1]) / 0.2
    third = 100.0  # the label output is silent
    second = 0.0 + 0.005 * (math.exp(0.5) - 1)  # only output 1 fired: softmax 1
    assert value.item() == pytest.approx((100.0 + second + third) / 3, rel=1e-9)
    assert torch.isfinite(logits).all()


def test_ttfs_gradient_is_finite_with_silent_outputs() -> None:
    t = torch.tensor([[INF, 0.5, 0.7], [0.2, INF, INF]], dtype=F64, requires_grad=True)
    loss = TTFSLoss()(LossInput(-t, torch.tensor([1, 1]), times=t))
    loss.backward()
    assert torch.isfinite(t.grad[torch.isfinite(t)]).all()


def test_shift_invariant_mse_by_hand() -> None:
    batch = record([[1.0, 1.5, 1.1], [3.0, 3.3, 2.8]], [0, 2])
    d = 0.2
    first = 0.5 * ((1.5 - 1.0 - d) ** 2 + (1.1 - 1.0 - d) ** 2)
    second = 0.5 * ((3.0 - 2.8 - d) ** 2 + (3.3 - 2.8 - d) ** 2)
    assert ShiftInvariantMSE(delta=d)(batch).item() == pytest.approx((first + second) / 2, rel=1e-12)
    shifted = record([[11.0, 11.5, 11.1], [13.0, 13.3, 12.8]], [0, 2])
    assert ShiftInvariantMSE(delta=d)(shifted).item() == pytest.approx((first + second) / 2, rel=1e-9)


def test_target_time_mse_predicts_the_output_closest_to_t_correct() -> None:
    batch = record([[0.5, 1.05, 2.0], [INF, 2.2, 1.9]], [1, 2])
    loss = TargetTimeMSE(t_correct=1.0, t_wrong=2.0)
    assert loss.predict(batch).tolist() == [1, 2]
    first = 0.5 * ((0.5 - 2.0) ** 2 + (1.05 - 1.0) ** 2 + 0.0)
    assert loss(record([[0.5, 1.05, 2.0]], [1])).item() == pytest.approx(first, rel=1e-12)


def bumping_result(fired: list[list[bool]]) -> tuple[SimpleNamespace, BatchResult]:
    torch.manual_seed(0)
    model = Network(3, [Factory(LAYERS, {"type": "FirstSpikeLIF", "out_features": 2}, "l0"),
                        Factory(LAYERS, {"type": "FirstSpikeLIF", "out_features": 2}, "l1")],
                    Factory(READOUTS, {"type": "SpikeTimeReadout"}, "readout"))
    traces = []
    for k, mask in enumerate(fired):
        times = torch.where(torch.tensor([mask, mask]), torch.tensor(1.0), torch.tensor(INF))
        traces.append(LayerTrace(None, ContinuousSpikes(times), None, None, True))
    output = NetworkOutput(torch.zeros(2, 2), traces, ReadoutOutput(torch.zeros(2, 2), None, None))
    logged: dict[str, float] = {}
    state = SimpleNamespace(model=model, log_metric=lambda k, v: logged.__setitem__(k, v), logged=logged)
    return state, BatchResult(0.0, output, None)


def test_weight_bumping_bumps_the_first_offending_layer_and_logs_it() -> None:
    state, result = bumping_result([[True, False], [False, False]])  # half silent, all silent
    before = [lay.weight.detach().clone() for lay in state.model.layers]
    cb = WeightBumping(max_missing=[0.3, 0.0], bump=0.01, targeted=True, doubling=True)
    cb.on_epoch_start(state, 1)
    cb.on_batch_end(state, 0, result)
    after = [lay.weight.detach() for lay in state.model.layers]
    torch.testing.assert_close(after[0][0], before[0][0])  # neuron 0 fired: not targeted
    torch.testing.assert_close(after[0][1], before[0][1] + 0.01)
    torch.testing.assert_close(after[1], before[1])  # only the first offending layer
    cb.on_batch_end(state, 1, result)  # the same layer again: the bump doubles
    torch.testing.assert_close(state.model.layers[0].weight.detach()[1], before[0][1] + 0.03)
    assert state.logged == {"bumps/total": 2.0, "bumps/size": pytest.approx(0.03), "bumps/layers.0": 2.0}
    quiet_state, quiet = bumping_result([[True, True], [True, True]])
    cb.on_batch_end(quiet_state, 2, quiet)
    assert cb.current == 0.01 and cb.previous is None


def test_short_yinyang_training_learns() -> None:
    from experiment.runner import build_pipeline
    from settings.resolve import resolve_experiment
    from pathlib import Path

    ROOT = Path(__file__).resolve().parents[2]
    trial = resolve_experiment(ROOT / "configs" / "yinyang_fastdeep",
                               ["epochs=3", "data.train_size=2000", "data.val_size=300", "data.test_size=100",
                                "model.layers[0].out_features=60", "batch_size=50"]).trials[0]
    history = build_pipeline(trial.config).fit(0).history
    assert history[0]["val_acc"] < 0.6 and history[-1]["val_acc"] > 0.7
    assert all(math.isfinite(row["train_loss"]) for row in history[1:])
