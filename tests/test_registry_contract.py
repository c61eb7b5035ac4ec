"""Conformance over every registered component: builds from minimal YAML, runs, right shapes,
deterministic under a seed, passes gradients where trainable, documented."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from network.events import ContinuousSpikes, SpikeTimes
from network.layers import LayerTrace
from settings.registries import (CALLBACKS, DATASETS, DELAYS, ENCODERS, INITIALIZERS, KERNELS, LAYERS, LEARNING_RULES,
                                 LOSSES, MODELS, OPTIMIZERS, READOUTS, SCHEDULERS, SURROGATES)
from settings.errors import ConfigError
from settings.registry import ALL_REGISTRIES
from settings.schema import build, validate
from tools.seeding import seed_everything

# the least YAML each component needs (required parameters only)
MINIMAL = {
    "Dense": {"out_features": 3, "kernel": "LIFKernel"},
    "Recurrent": {"out_features": 3, "kernel": "LIFKernel"},
    "FirstSpikeLIF": {"out_features": 3},
    "LeakyIntegrator": {"out_features": 3},
    "Network": {"layers": [{"type": "Dense", "out_features": 3, "kernel": "LIFKernel"}], "readout": "SpikeCount"},
    "SRNN": {"out_features": 3}, "Spikformer": {"out_features": 3, "embed_dim": 8, "depth": 1},
    "EncoderClassifier": {"encoder": "STAL", "classifier": {"type": "SRNN", "out_features": 3}},
    "StepLR": {"step_size": 2}, "MultiStepLR": {"milestones": [1, 2]}, "ExponentialLR": {"gamma": 0.9},
    "CosineAnnealingLR": {"T_max": 5}, "CyclicLR": {"base_lr": 0.001, "max_lr": 0.01},
    "OneCycleLR": {"max_lr": 0.01, "total_steps": 20}, "CosineAnnealingWarmRestarts": {"T_0": 3},
}


def minimal(registry, name):
    return validate({"type": name, **MINIMAL.get(name, {})}, registry, name)


def entries(registry):
    return [pytest.param(name, id=name) for name in registry.names()]


@pytest.mark.parametrize("name", [n for r in ALL_REGISTRIES.values() for n in r.names()])
def test_every_component_is_documented(name):
    registry = next(r for r in ALL_REGISTRIES.values() if name in r)
    entry = registry.get(name)
    own = vars(entry).get("__doc__") if isinstance(entry, type) else entry.__doc__
    assert own and own.strip(), f"{registry.kind}: {name} needs its own docstring (it feeds the README)"


@pytest.mark.parametrize("name", entries(KERNELS))
def test_kernels(name):
    x = torch.randn(20, 3, 4, dtype=torch.float64) + 0.5
    outs = []
    for _ in range(2):
        torch.manual_seed(0)  # per-neuron constants drawn at build (ALIF's tau ~ N(20, 5)) come from the seed
        kernel = build(minimal(KERNELS, name), KERNELS, size=4).double()
        xi = x.clone().requires_grad_()
        out, state, membrane = kernel.trace(xi)
        assert out.shape == membrane.shape == (20, 3, 4)
        out.sum().backward() if out.requires_grad else membrane.sum().backward()
        assert xi.grad is not None and torch.isfinite(xi.grad).all()
        outs.append(out.detach())
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name", entries(SURROGATES))
def test_surrogates(name):
    s = build(minimal(SURROGATES, name), SURROGATES)
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    spikes = s.spike(x)
    assert spikes.tolist() == (x > 0).float().tolist()
    spikes.sum().backward()
    assert torch.allclose(x.grad, s.derivative(x.detach())) and float(s.derivative(torch.zeros(1))) > 0


@pytest.mark.parametrize("name", entries(INITIALIZERS))
def test_initializers(name):
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        w = torch.empty(5, 4)
        build(minimal(INITIALIZERS, name), INITIALIZERS)(w)
        weights.append(w)
    assert torch.isfinite(weights[0]).all() and torch.equal(*weights)


@pytest.mark.parametrize("name", entries(LAYERS) + entries(MODELS))
def test_layers_and_models(name):
    registry = LAYERS if name in LAYERS else MODELS
    runtime = {"in_features": 6} if registry is LAYERS else {"input_size": 6}

    def run(seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
        seed_everything(seed)
        module = build(minimal(registry, name), registry, **runtime)
        if getattr(module, "takes", "raster") == "continuous":  # first-spike layers: [B, N] spike times
            x = ContinuousSpikes(torch.rand(2, 6) * 2.0)
            out = module(x)
            assert out.out.times.shape == (2, module.out_features) and out.membrane is None
            return module, out, out.out.times
        x = (torch.rand(15, 2, 6) < 0.5).float()
        out = module(x)
        if registry is LAYERS:
            # [T', B, *out_features]: a learned encoder (STAL) makes psi steps of each input step
            size = module.out_features
            assert out.out.shape[0] % 15 == 0 and out.out.shape[1:] == (2, *(size if isinstance(size, tuple) else (size,)))
            return module, out, out.membrane
        assert out.scores.shape == (2, 3)
        return module, out, out.traces[0].membrane

    module, out, membrane = run(0)
    _, out_again, membrane_again = run(0)
    value = membrane if registry is LAYERS else out.scores
    assert torch.equal(value, membrane_again if registry is LAYERS else out_again.scores)
    assert torch.equal(membrane, membrane_again)
    assert not torch.equal(membrane, run(1)[2])  # the seed does reach the weights and the input
    # every parameter reaches the membrane, the scores or a penalty term (a STAL's match projections)
    penalties = (out.penalty or {}) if registry is LAYERS else out.penalties()
    total = membrane.sum() + (0 if registry is LAYERS else out.scores.sum())
    (total + sum(term.sum() for term in penalties.values())).backward()
    assert all(p.grad is not None for p in module.parameters())


@pytest.mark.parametrize("name", entries(READOUTS))
def test_readouts(name):
    def run(seed: int):
        seed_everything(seed)
        readout = build(minimal(READOUTS, name), READOUTS, in_features=3)
        if readout.takes == "continuous":  # output spike times of a first-spike layer
            times = ContinuousSpikes(torch.rand(2, 3) * 2.0)
            out = readout(LayerTrace(times, times, None, None, True))
            assert torch.equal(out.times, times.times)
        else:
            spikes = (torch.rand(10, 2, 3) < 0.5).float()
            out = readout(LayerTrace(spikes, spikes, torch.randn(10, 2, 3), None, True))
        assert out.scores.shape == (2, readout.out_features)
        return out

    first, again = run(0), run(0)
    assert torch.equal(first.scores, again.scores)
    for a, b in ((first.time_index, again.time_index), (first.trace, again.trace)):
        assert (a is None and b is None) or torch.equal(a, b)
    assert not torch.equal(first.scores, run(1).scores)


@pytest.mark.parametrize("name", entries(DELAYS))
def test_delays(name):
    """Every delay builds from minimal YAML, gives per-neuron input times ``[B, S, I]`` no earlier
    than the inputs (delays >= 0 by default) and passes gradients to its parameter."""
    torch.manual_seed(0)
    delay = build(minimal(DELAYS, name), DELAYS, in_features=3, out_features=4)
    t = torch.rand(2, 3)
    shifted = delay(t)
    assert shifted.shape[0] == 2 and shifted.shape[1] in (1, 4) and shifted.shape[2] == 3
    assert (shifted >= t.unsqueeze(1)).all()
    shifted.sum().backward()
    assert delay.theta.grad is not None and delay.theta.grad.abs().sum() > 0


@pytest.mark.parametrize("name", entries(LOSSES))
def test_losses(name):
    """Every loss builds from minimal YAML, takes a full record of a batch (per-sample and per-step
    scores, spikes; per-step targets when it asks for them), gives a scalar with gradients, and
    predicts one class per sample (or per step)."""
    from network.losses import LossInput

    loss = build(minimal(LOSSES, name), LOSSES)
    step_scores = torch.randn(5, 4, 3, requires_grad=True)
    spikes = (torch.rand(5, 4, 6) < 0.3).float().requires_grad_()
    per_step = loss.target_kind() == "per_step"
    targets = torch.tensor([[0, 1, 2, 1, 0]] * 4) if per_step else torch.tensor([0, 1, 2, 1])
    # the terms a learned encoder reports (network/stal.py), for the losses that read them
    match = torch.rand(2, 4, 6, requires_grad=True)
    encoder = {"encoder.input": torch.rand(4, 6), "encoder.match": match, "encoder.spikes": spikes.sum(dim=(0, 2)),
               "encoder.psi": torch.tensor(5.0)}
    # a first-spike readout's output times and a delay layer's penalty (network/first_spike/)
    times = (0.5 + torch.rand(4, 3)).requires_grad_()
    delays = torch.rand(6, requires_grad=True)
    penalties = {**encoder, "delay_l2": delays.pow(2).sum()}
    record = LossInput(step_scores.mean(dim=0), targets, step_scores=step_scores, spikes=(spikes,), times=times,
                       penalties=penalties)
    value = loss(record)
    value.backward()
    assert value.dim() == 0 and any(t.grad is not None for t in (step_scores, spikes, match, times, delays))
    if not loss.regularizer:
        assert loss.predict(record).shape == targets.shape


@pytest.mark.parametrize("name", entries(LEARNING_RULES))
def test_learning_rules(name):
    from testkit import TEMPOTRON_CONFIG, make_pipeline

    from pipeline.callbacks.base import Callback

    class Weights(Callback):
        def on_fit_start(self, state):
            self.before = state.model.layers[0].weight.detach().clone()

        def on_fit_end(self, state):
            self.after = state.model.layers[0].weight.detach().clone()

    weights = Weights()
    make_pipeline(TEMPOTRON_CONFIG, epochs=1, learning_rule={"type": name}).fit(seed=0, callbacks=[weights])
    assert torch.isfinite(weights.after).all() and not torch.equal(weights.before, weights.after)


@pytest.mark.parametrize("name", entries(OPTIMIZERS))
def test_optimizers(name):
    """Every optimizer steps the weights through the closure the pipeline gives it (LBFGS
    evaluates it, the others call it once); SparseAdam is refused at validation instead."""
    if name == "SparseAdam":
        with pytest.raises(ConfigError, match="SparseAdam cannot be used: it needs sparse gradients"):
            validate(minimal(OPTIMIZERS, name), OPTIMIZERS, "optimizer")
        return
    w = torch.nn.Parameter(torch.ones(3, 3))
    opt = build(minimal(OPTIMIZERS, name), OPTIMIZERS, params=[w])

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert not torch.equal(w.detach(), torch.ones(3, 3))


@pytest.mark.parametrize("name", entries(SCHEDULERS))
def test_schedulers(name):
    """The registered scheduler gives the same learning rates, step by step, as torch's own class
    built with the same arguments (12 steps: ReduceLROnPlateau's default patience of 10 runs out)."""
    def learning_rates(make, step) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.01)
        scheduler = make(opt)
        rates = []
        for _ in range(12):
            opt.step()
            step(scheduler)
            rates.append(opt.param_groups[0]["lr"])
        return rates

    cls = getattr(torch.optim.lr_scheduler, name)
    ours = learning_rates(lambda opt: build(minimal(SCHEDULERS, name), SCHEDULERS, optimizer=opt),
                          lambda s: s.step({"val_loss": 1.0}))
    theirs = learning_rates(lambda opt: cls(opt, **MINIMAL.get(name, {})),
                            lambda s: s.step(1.0) if name == "ReduceLROnPlateau" else s.step())
    assert ours == theirs
    assert len(set(ours)) > 1, "the learning rate never changed: the comparison would prove nothing"


@pytest.mark.parametrize("name", entries(ENCODERS))
def test_encoders(name):
    from tools.seeding import torch_generator

    enc = build(minimal(ENCODERS, name), ENCODERS)
    x = torch.rand(4, 5)
    a, b = enc.encode(x, torch_generator(1, "e")), enc.encode(x, torch_generator(1, "e"))
    if isinstance(a, ContinuousSpikes):  # one continuous time per input: [B, F']
        assert a.times.shape == (4, enc.out_features(5)) and torch.equal(a.times, b.times)
        return
    dense = a.to_dense() if isinstance(a, SpikeTimes) else a
    assert dense.shape[1:] == (4, enc.out_features(5))
    assert torch.equal(dense, b.to_dense() if isinstance(b, SpikeTimes) else b)


@pytest.mark.parametrize("name", entries(DATASETS))
def test_datasets(name, tmp_path):
    """Data sets read from local files get small ones in their format, written here."""
    from datafiles import write_mnist_folder, write_shd_folder

    writers = {"MNISTIDX": write_mnist_folder, "SequentialMNISTIDX": write_mnist_folder, "SHD": write_shd_folder}
    spec = {"type": name, **MINIMAL.get(name, {})}
    if name in writers:
        writers[name](tmp_path)
        spec["data_dir"] = str(tmp_path)
    ds = build(validate(spec, DATASETS, name), DATASETS)
    a, b = ds.load(0), ds.load(0)
    assert torch.equal(a.train.x, b.train.x) and a.n_classes >= 2
    ids = [set(s.index.tolist()) for _, s in a.items()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


@pytest.mark.parametrize("name", entries(CALLBACKS))
def test_callbacks(name, tmp_path):
    """Every callback survives a real fit (all hooks), and its state_dict restores what the fit
    left in it: a state the fit never changes is no state to resume from."""
    from testkit import TEMPOTRON_CONFIG, make_pipeline

    cb = build(minimal(CALLBACKS, name), CALLBACKS)
    assert isinstance(cb.order, int)
    untouched = copy.deepcopy(cb.state_dict())
    pipe = make_pipeline(TEMPOTRON_CONFIG, epochs=2, data={"val_fraction": 0.25})
    result = pipe.fit(seed=0, run_dir=tmp_path / "run", callbacks=[cb])
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    saved = copy.deepcopy(cb.state_dict())
    assert isinstance(saved, dict)
    if saved:
        assert saved != untouched
    restored = build(minimal(CALLBACKS, name), CALLBACKS)
    restored.load_state_dict(copy.deepcopy(saved))
    assert restored.state_dict() == saved


def test_readme_component_list_is_generated_from_the_registries():
    from pipeline.catalog import END, START, catalog_markdown

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split(START, 1)[1].split(END, 1)[0]
    assert section == "\n" + catalog_markdown(), "run: python -m pipeline.catalog --write"
