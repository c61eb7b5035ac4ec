"""The constructor signature is the schema: every kind of bad spec gives one line with its path."""
from __future__ import annotations

import pytest

from settings.errors import ConfigError
from settings.registries import KERNELS, LAYERS, MODELS, OPTIMIZERS, PIPELINES, SCHEDULERS, SURROGATES
from settings.registry import Registry
from settings.schema import Factory, build, validate


def issues(spec, registry, env=None):
    with pytest.raises(ConfigError) as info:
        validate(spec, registry, "kernel", env=env)
    return [str(i) for i in info.value.issues]


def test_resolved_spec_has_every_default():
    resolved = validate({"type": "LIFKernel", "tau_m": 5}, KERNELS, "kernel")
    assert resolved["tau_m"] == 5.0 and isinstance(resolved["tau_m"], float)
    assert resolved["reset"] == "soft"
    assert resolved["surrogate"] == {"type": "FastSigmoid", "k": 10.0}  # a string default expands to a full spec


def test_shorthand_name_is_a_spec():
    assert validate("ATan", SURROGATES) \
        == {"type": "ATan", "a": 2.0}


def test_unknown_type_suggests_and_lists_valid_names():
    (line,) = issues({"type": "LIFKernal"}, KERNELS)
    assert line.startswith("kernel.type is not a known kernel: got 'LIFKernal' (did you mean 'LIFKernel'?)")
    assert "valid: ALIFKernel, BHRFKernel, BRFKernel, DENKernel, LIFKernel, LIKernel" in line


def test_misspelled_key():
    (line,) = issues({"type": "LIFKernel", "tau_mm": 5}, KERNELS)
    assert line.startswith("kernel.tau_mm is not a parameter of LIFKernel (did you mean 'tau_m'?); allowed: tau_m")


@pytest.mark.parametrize("value, expected", [
    ("fast", "kernel.tau_m must be a number > 0 or an initializer spec, one of: Constant, KaimingUniform, Normal, Uniform, XavierUniform, got 'fast'"),
    (-5, "kernel.tau_m must be a number > 0 or an initializer spec, one of: Constant, KaimingUniform, Normal, Uniform, XavierUniform, got -5"),
    (0, "kernel.tau_m must be a number > 0 or an initializer spec, one of: Constant, KaimingUniform, Normal, Uniform, XavierUniform, got 0"),
    (True, "kernel.tau_m must be a number > 0 or an initializer spec, one of: Constant, KaimingUniform, Normal, Uniform, XavierUniform, got true"),
])
def test_wrong_type_and_out_of_range(value, expected):
    assert issues({"type": "LIFKernel", "tau_m": value}, KERNELS) == [expected]


def test_literal_choices_and_nested_specs():
    lines = issues({"type": "LIFKernel", "reset": "sof", "surrogate": {"type": "ATan", "a": -1}}, KERNELS)
    assert lines == ["kernel.reset must be one of 'soft', 'hard', 'none', got 'sof' (did you mean 'soft'?)",
                     "kernel.surrogate.a must be a number > 0, got -1"]


def test_all_problems_reported_at_once():
    lines = issues({"type": "LIFKernel", "tau_m": -1, "reset": 3, "bogus": 1}, KERNELS)
    assert len(lines) == 3
    assert lines[0].startswith("kernel.bogus is not a parameter of LIFKernel; allowed: tau_m, ")
    assert lines[1:] == ["kernel.tau_m must be a number > 0 or an initializer spec, one of: Constant, KaimingUniform, Normal, Uniform, XavierUniform, got -1",
                         "kernel.reset must be one of 'soft', 'hard', 'none', got 3"]


def test_missing_required_key_names_what_is_allowed():
    with pytest.raises(ConfigError) as info:
        validate({"data": {"type": "Digits"}, "loss": "CrossEntropyLoss", "optimizer": "Adam",
                  "model": {"layers": [{"type": "Dense", "out_features": 4}], "readout": "SpikeCount"}}, PIPELINES)
    (line,) = [str(i) for i in info.value.issues]
    assert line == ("model.layers[0].kernel is missing: Dense requires it "
                    "(a kernel spec, one of: ALIFKernel, BHRFKernel, BRFKernel, DENKernel, LIFKernel, LIKernel, LeakyKernel, RFKernel, "
                    "SequentialDENKernel)")


def test_zero_size_is_rejected():
    with pytest.raises(ConfigError, match=r"model.layers\[0\].out_features must be an integer > 0, got 0"):
        validate({"layers": [{"type": "Dense", "out_features": 0, "kernel": "LIFKernel"}], "readout": "SpikeCount"},
                 MODELS, "model")


def test_integral_float_accepted_for_int_fractional_rejected():
    ok = validate({"type": "Dense", "out_features": 4.0, "kernel": "LIFKernel"},
                  LAYERS)
    assert ok["out_features"] == 4 and isinstance(ok["out_features"], int)
    with pytest.raises(ConfigError, match="must be an integer > 0, got 4.5"):
        validate({"type": "Dense", "out_features": 4.5, "kernel": "LIFKernel"},
                 LAYERS)


def test_env_values_are_injected_unless_set():
    env = {"dt": 0.5, "v_th": 2.0}
    resolved = validate({"type": "LIFKernel", "v_th": 1.5}, KERNELS, env=env)
    assert resolved["dt"] == 0.5 and resolved["v_th"] == 1.5


def test_runtime_arguments_cannot_be_set_and_give_factories():
    with pytest.raises(ConfigError, match="optimizer.params is set at run time"):
        validate({"type": "Adam", "params": 1}, OPTIMIZERS, "optimizer")
    spec = validate({"type": "StepLR", "step_size": 3, "interval": "batch"}, SCHEDULERS)
    assert spec["interval"] == "batch"


def test_cross_field_check():
    with pytest.raises(ConfigError, match="kernel.tau_s must differ from tau_m"):
        validate({"type": "DENKernel", "tau_m": 5, "tau_s": 5}, KERNELS, "kernel")


def test_build_makes_factories_for_runtime_kinds():
    import torch

    layer_spec = validate({"type": "Dense", "out_features": 3, "kernel": {"type": "LIFKernel", "tau_m": 7}},
                          LAYERS)
    layer = build(layer_spec, LAYERS, in_features=5)
    assert layer.weight.shape == (3, 5)
    assert float(layer.kernel.tau_m) == 7.0
    opt = build(validate({"type": "SGD", "lr": 0.1}, OPTIMIZERS), OPTIMIZERS, params=layer.parameters())
    assert isinstance(opt, torch.optim.SGD)


def test_duplicate_registration_fails_at_import():
    from settings.registry import ALL_REGISTRIES

    registry = Registry("widgets_for_test")
    try:
        @registry.register
        class Thing:
            """A widget."""

        with pytest.raises(RuntimeError, match="registered twice"):
            registry.register(Thing)
    finally:
        ALL_REGISTRIES.pop("widgets_for_test")  # the catalog and contract tests see the real kinds only


def test_factory_repr_and_type_name():
    spec = validate({"type": "Adam"}, OPTIMIZERS)
    factory = Factory(OPTIMIZERS, spec, "optimizer")
    assert factory.type_name == "Adam"
    # the registry kind and the whole resolved spec, defaults included (their tail varies with torch)
    assert repr(factory).startswith("Factory(optimizers: {'type': 'Adam', 'lr': 0.001, 'betas': [0.9, 0.999], ")
    assert repr(factory) == f"Factory(optimizers: {spec!r})"
