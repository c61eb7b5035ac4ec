"""Problems that used to surface only inside a run are caught before anything runs (or name the fix)."""
from __future__ import annotations

import pytest
import torch
from testkit import TINY_CONFIG, make_pipeline, write_experiment

from settings.env import Env
from settings.errors import ConfigError
from settings.resolve import resolve_experiment
from settings.schema import validate_fields


@pytest.mark.parametrize("device, message", [
    ("gpu", "env.device 'gpu' is not a device; allowed: cpu, cuda, cuda:<index>, mps, auto"),
    ("cuda", "env.device 'cuda' but this machine has no CUDA GPU; use cpu, or auto"),
])
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_an_unavailable_device_is_a_config_error(device, message):
    with pytest.raises(ConfigError) as info:
        validate_fields({"device": device}, Env, "env")
    assert message in str(info.value)


def test_auto_and_cpu_are_always_accepted():
    assert validate_fields({"device": "auto"}, Env, "env")["device"] == "auto"
    assert validate_fields({"device": "cpu"}, Env, "env")["device"] == "cpu"


def test_a_scheduler_that_fails_on_its_first_step_is_rejected():
    with pytest.raises(ConfigError, match="scheduler is rejected by torch StepLR: integer modulo by zero"):
        make_pipeline(TINY_CONFIG, scheduler={"type": "StepLR", "step_size": 0})


def test_too_few_outputs_for_the_classes_names_the_fix():
    """Refused by validation, before the data is loaded (it used to fail inside the run)."""
    with pytest.raises(ConfigError, match=r"model.readout.out_features is too small for the data: the model has 3 "
                                          r"output.s. but the data has 10 classes, got 3; set the readout"):
        make_pipeline(TINY_CONFIG.replace("out_features: 10", "out_features: 3"))


def test_components_must_share_one_time_step():
    with pytest.raises(ConfigError, match=r"components step time differently \(.*encoder.dt 0.5.*\); set env.dt "
                                          r"once instead"):
        make_pipeline(TINY_CONFIG.replace("gain: 0.5}", "gain: 0.5, dt: 0.5}"))
    make_pipeline(TINY_CONFIG, env={"dt": 0.5, "T": 10.0})  # env.dt reaches every component alike


def test_a_set_on_a_swept_or_searched_path_is_refused(tmp_path):
    trials = ("- name: grid\n  sweep: {optimizer.lr: [0.01, 0.02]}\n"
              "- name: tpe\n  search: {method: random, n_trials: 2, params: {epochs: {choice: [1, 2]}}}\n")
    folder = write_experiment(tmp_path / "e", TINY_CONFIG, trials)
    with pytest.raises(ConfigError) as info:
        resolve_experiment(folder, ["optimizer={type: SGD, lr: 0.1}", "epochs=3"])
    lines = [str(i) for i in info.value.issues]
    assert lines == [
        "--set: optimizer is varied by trial 'grid' (optimizer.lr), so the --set would replace every value it "
        "takes; drop the --set or change the trial",
        "--set: epochs is varied by trial 'tpe' (epochs), so the --set would replace every value it takes; drop "
        "the --set or change the trial"]
    assert resolve_experiment(folder, ["batch_size=16"]).trials  # other paths are fine


def test_an_optimizer_torch_refuses_with_a_runtime_error_is_a_config_error():
    """torch raises RuntimeError (not ValueError) for some argument combinations."""
    from settings.registries import OPTIMIZERS
    from settings.schema import validate

    with pytest.raises(ConfigError, match="optimizer is rejected by torch SGD: `fused` does not support `differentiable`"):
        validate({"type": "SGD", "lr": 0.1, "fused": True, "differentiable": True}, OPTIMIZERS, "optimizer")
