"""Every kind of bad input: one clear line (path, bad value, what is allowed), exit 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main.main(list(argv))
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_experiment(tmp_path / "exp", TINY_CONFIG, experiment=f"name: bad\nbase_dir: {tmp_path / 'out'}\n")


def assert_rejected(capsys, folder: Path, *extra: str, expect: list[str]) -> None:
    code, lines = run_cli(capsys, "run", str(folder), *extra)
    assert code == 2, lines
    assert len(lines) == len(expect), lines
    for line, needle in zip(lines, expect):
        assert line.startswith("error: ") and needle in line, (line, needle)
    assert not (folder.parent / "out").exists(), "nothing may be written for invalid input"


def test_invalid_yaml(capsys, folder):
    (folder / "config.yaml").write_text("data: {type: Digits\nloss: x\n")
    # one line: the file, line and column, then what the parser says
    assert_rejected(capsys, folder, expect=["config.yaml:2:5: invalid YAML: expected ',' or '}', but got ':'"])


def test_unknown_type(capsys, folder):
    text = TINY_CONFIG.replace("LIFKernel", "LIFKernal")
    (folder / "config.yaml").write_text(text)
    assert_rejected(capsys, folder, expect=[
        "model.layers[0].kernel.type is not a known kernel: got 'LIFKernal' (did you mean 'LIFKernel'?); "
        "valid: ALIFKernel, BHRFKernel, BRFKernel, DENKernel, LIFKernel, LIKernel"])


def test_misspelled_key(capsys, folder):
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("lr: 0.01", "lrr: 0.01"))
    assert_rejected(capsys, folder, expect=["optimizer.lrr is not a parameter of Adam (did you mean 'lr'?); allowed:"])


def test_wrong_type(capsys, folder):
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("epochs: 2", "epochs: two"))
    assert_rejected(capsys, folder, expect=["epochs must be an integer >= 0, got 'two'"])


@pytest.mark.parametrize("size", ["0", "-16"])
def test_zero_or_negative_size(capsys, folder, size):
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("out_features: 16", f"out_features: {size}"))
    assert_rejected(capsys, folder, expect=[f"model.layers[0].out_features must be an integer > 0, got {size}"])


def test_missing_required_key(capsys, folder):
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("loss: CrossEntropyLoss\n", ""))
    assert_rejected(capsys, folder, expect=["loss is missing: TrainingPipeline requires it (a loss spec, one of: "
                                            "BinaryLoss, "])


def test_unknown_set_path(capsys, folder):
    assert_rejected(capsys, folder, "--set", "optimizer.lrr=0.1",
                    expect=["--set: optimizer.lrr is not a parameter of Adam (did you mean 'lr'?)"])


def test_set_index_out_of_range(capsys, folder):
    assert_rejected(capsys, folder, "--set", "model.layers[3].out_features=4",
                    expect=["--set: model.layers[3].out_features does not exist"])


def test_malformed_set(capsys, folder):
    assert_rejected(capsys, folder, "--set", "epochs", expect=["--set: expects PATH=VALUE, got 'epochs'"])


def test_trial_name_used_twice(capsys, folder):
    (folder / "trials.yaml").write_text("- name: a\n- name: b\n- name: a\n")
    assert_rejected(capsys, folder, expect=["trials.yaml: [2].name 'a' is used twice (first at [0])"])


def test_unknown_trial_filter(capsys, folder):
    assert_rejected(capsys, folder, "--trial", "nope", expect=["--trial: no trial or sweep point named 'nope'; trials: base"])


def test_env_error_names_env_yaml(capsys, folder):
    (folder / "env.yaml").write_text("T: -3\ndtt: 1\n")
    assert_rejected(capsys, folder, expect=["env.dtt is not a parameter of env.yaml (did you mean 'dt'?)",
                                            "env.T must be a number > 0, got -3"])


def test_every_problem_at_once(capsys, folder):
    text = TINY_CONFIG.replace("epochs: 2", "epochs: -1").replace("lr: 0.01", "lr: -0.5")
    (folder / "config.yaml").write_text(text.replace("tau_m: 10.0}", "tau_m: 10.0, reset: sometimes}"))
    assert_rejected(capsys, folder, expect=[
        "trial 'base': model.layers[0].kernel.reset must be one of 'soft', 'hard', 'none', got 'sometimes'",
        "trial 'base': optimizer is rejected by torch Adam: Invalid learning rate: -0.5",
        "trial 'base': epochs must be an integer >= 0, got -1"])


def test_missing_folder_and_missing_config(capsys, tmp_path):
    code, lines = run_cli(capsys, "run", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a folder" in lines[0]
    (tmp_path / "empty").mkdir()
    code, lines = run_cli(capsys, "run", str(tmp_path / "empty"))
    assert code == 2 and "no config.yaml found" in lines[0]


def test_config_command_reports_the_same_errors(capsys, folder):
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("epochs: 2", "epochs: two"))
    code, lines = run_cli(capsys, "config", str(folder))
    assert code == 2 and "epochs must be an integer >= 0, got 'two'" in lines[0]


def test_torch_optimizer_arguments_are_type_checked(capsys, folder):
    """torch annotates ``lr: float | Tensor``; a YAML value is never a tensor, so a string must fail
    the number check (and not slip through to a cryptic comparison error inside torch)."""
    (folder / "config.yaml").write_text(TINY_CONFIG.replace("lr: 0.01", "lr: abc, betas: [0.9, x]"))
    assert_rejected(capsys, folder, expect=["optimizer.lr must be a number, got 'abc'",
                                            "optimizer.betas[1] must be a number, got 'x'"])


def test_a_set_problem_shows_once_for_several_trials(capsys, folder):
    (folder / "trials.yaml").write_text("- name: a\n- name: b\n- name: c\n")
    assert_rejected(capsys, folder, "--set", "epochs=-1", expect=["--set: epochs must be an integer >= 0, got -1"])


@pytest.mark.parametrize("text, needle", [
    ("- 1\n- 2\n", "config.yaml: must be a mapping, got [1, 2]"),
    (TINY_CONFIG.replace("model:\n", "model: 3\nunused:\n"), "model must be a model spec"),
    (TINY_CONFIG + "callbacks: x\n", "callbacks must be a list, got 'x'"),
])
def test_odd_yaml_shapes(capsys, folder, text, needle):
    (folder / "config.yaml").write_text(text)
    code, lines = run_cli(capsys, "run", str(folder))
    assert code == 2 and any(needle in line for line in lines), lines
    assert all(line.startswith("error: ") for line in lines)
    assert not (folder.parent / "out").exists()


def test_zero_jobs(capsys, folder):
    assert_rejected(capsys, folder, "--n-jobs", "0", expect=["--n-jobs: must be >= 1, got 0"])
