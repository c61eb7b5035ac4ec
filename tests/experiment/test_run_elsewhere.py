"""``run`` started from another folder (relative paths are relative to the current folder and
printed absolute; printed commands name main.py by its path), and the resume command that ``run``
prints after Ctrl-C."""
from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from testkit import TINY_CONFIG, sigint_as_in_a_terminal, wait_for_epoch, write_experiment

import main
from experiment.reporting import cli_command

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "main.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def line_of(output: str, prefix: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(prefix))[len(prefix):].strip()


def as_argv(command: str) -> list[str]:
    """A printed ``python ...`` command as an argv for this interpreter."""
    words = shlex.split(command)
    assert words[0] == "python"
    return [sys.executable, *words[1:]]


def test_the_bundled_default_runs_from_another_folder(tmp_path):
    """Its outputs/ is made in the current folder; every printed path and command works there."""
    cmd = [sys.executable, MAIN, "run", str(ROOT / "configs" / "default"), "--trial", "tau10", "--set", "epochs=0",
           "--set", "experiment.repeat=1", "--no-mlflow", "--no-progress"]
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "outputs" / "spikelab.db").is_file()
    assert (tmp_path / "outputs" / "quick_tour" / "tau10" / "repeat_0" / "run.json").is_file()
    assert not (ROOT / "configs" / "default" / "outputs").exists()
    assert line_of(done.stdout, "database:") == f"sqlite:///{tmp_path.resolve() / 'outputs' / 'spikelab.db'}"
    assert line_of(done.stdout, "run folders:") == f"{tmp_path.resolve() / 'outputs' / 'quick_tour'}/<trial>/repeat_<k>/"
    show = line_of(done.stdout, "more:").split(" | ")[0]
    assert show == f"python {MAIN} show quick_tour"
    shown = subprocess.run(as_argv(show), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "quick_tour (version 1)" in shown.stdout, shown.stderr


def test_commands_are_printed_as_python_main_py_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    assert cli_command() == "python main.py"
    monkeypatch.chdir(tmp_path)
    assert cli_command() == f"python {shlex.quote(MAIN)}"


def test_the_resume_command_keeps_the_arguments_and_drops_fresh():
    args = main.build_parser().parse_args(["run", "my exp", "--set", "optimizer.lr=0.1", "--set", "env.T=40",
                                           "--trial", "a", "--db", "sqlite:///x.db", "--n-jobs", "2", "--fresh",
                                           "--no-mlflow", "--no-progress"])
    assert main.resume_command(args) == (f"{cli_command()} run 'my exp' --set optimizer.lr=0.1 --set env.T=40 "
                                         "--trial a --db sqlite:///x.db --n-jobs 2 --no-mlflow --no-progress")


def test_ctrl_c_prints_the_command_that_resumes(tmp_path):
    """A --fresh run interrupted by SIGINT prints how to resume it; that command (no --fresh)
    resumes the same version instead of starting another."""
    # long enough that the interrupt always lands mid-run, also on a quiet machine
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 40").replace("out_features: 16", "out_features: 128")
    write_experiment(tmp_path / "exp", config, "- name: long\n",
                     experiment="name: tiny\nbase_dir: out\nrepeat: 1\nmlflow: {enabled: false}\n")
    db = f"sqlite:///{tmp_path / 'own.db'}"
    cmd = [sys.executable, MAIN, "run", "exp", "--set", "optimizer.lr=0.02", "--db", db, "--fresh", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    wait_for_epoch(tmp_path / "own.db", 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    resume = line_of(err, "resume:")
    assert resume == f"python {MAIN} run exp --set optimizer.lr=0.02 --db {db} --no-progress"
    again = subprocess.run(as_argv(resume), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "own.db") as con:
        assert con.execute("SELECT COUNT(*) FROM experiment").fetchone()[0] == 1
        assert con.execute("SELECT status, attempts FROM run").fetchone() == ("COMPLETED", 2)
