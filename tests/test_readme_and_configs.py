"""The README tells the truth: its pandas snippet runs; every bundled experiment validates."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from datafiles import write_shd_folder
from testkit import TINY_CONFIG, write_experiment

import main
from settings.resolve import resolve_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_readme_pandas_snippet_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"<!-- pandas-snippet:start -->\n```python\n(.*?)```", text, re.S).group(1)
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG, "- name: tau10\n- name: tau25\n  settings:\n"
                              "    model.layers[0].kernel.tau_m: 25.0\n",
                              experiment="name: quick_tour\nrepeat: 2\nmlflow: {enabled: false}\n")
    monkeypatch.chdir(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    capsys.readouterr()
    exec(compile(snippet, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "final_test_acc_mean" in out and "tau25" in out
    report = tmp_path / "outputs" / "quick_tour" / "report"
    for name in ("learning_curve_train_acc.png", "learning_curve_val_acc.png"):  # one file per metric asked for
        assert (report / name).is_file() and (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "configs").iterdir() if p.is_dir()))
def test_bundled_experiments_validate(folder, tmp_path, monkeypatch):
    # configs on the user's own files (SHD) validate against small files in SHD's schema
    monkeypatch.setenv("SPIKELAB_DATA", str(tmp_path))
    write_shd_folder(tmp_path / "shd")
    resolved = resolve_experiment(ROOT / "configs" / folder)
    assert resolved.trials or resolved.searches


def test_shd_resonators_trains_on_files_in_shd_schema(tmp_path, monkeypatch, capsys):
    """The SHD experiment end to end (1 epoch, both trials) on a small file the test writes."""
    monkeypatch.setenv("SPIKELAB_DATA", str(tmp_path / "data"))
    write_shd_folder(tmp_path / "data" / "shd", n_train=40, n_test=10)
    code = main.main(["run", str(ROOT / "configs" / "shd_resonators"), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
                      "--set", "epochs=1", "--set", "experiment.repeat=1", "--set", "experiment.base_dir=" +
                      str(tmp_path / "outputs"), "--no-mlflow", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "brf" in out and "alif" in out and "2 completed" in out


def test_readme_commands_exist():
    text = (ROOT / "README.md").read_text()
    commands = set(re.findall(r"^python main\.py (\w+)", text, re.M))
    parser = main.build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert commands and commands <= known, commands - known
    for folder in re.findall(r"python main\.py run (configs/\w+)", text):
        assert (ROOT / folder).is_dir(), folder
