"""A run folder holds what DESIGN.md lists: config.yaml, metrics.csv, checkpoints/, plots/, log.txt."""
from __future__ import annotations

import hashlib
from pathlib import Path

from testkit import TINY_CONFIG, write_experiment

import main
from experiment.store import SQLStore


def test_completed_and_failed_runs_leave_a_log_plots_and_hashed_artifacts(tmp_path: Path, capsys):
    out = tmp_path / "out"
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG,
                              trials="- name: ok\n- name: nan\n  settings: {optimizer: {type: SGD, lr: 1.0e+38}}\n",
                              experiment=f"name: folders\nbase_dir: {out}\nrepeat: 1\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    capsys.readouterr()
    ok, bad = out / "folders" / "ok" / "repeat_0", out / "folders" / "nan" / "repeat_0"
    assert {p.name for p in ok.iterdir()} >= {"config.yaml", "metrics.csv", "checkpoints", "plots", "log.txt"}
    assert (ok / "plots" / "learning_curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    lines = (ok / "log.txt").read_text().splitlines()
    assert "attempt 1 of run" in lines[0] and "(ok/repeat_0)" in lines[0]
    assert [line.split("  ", 1)[1].split(":")[0] for line in lines[1:4]] == ["epoch 0", "epoch 1", "epoch 2"]
    assert "COMPLETED in" in lines[-1]
    failed = (bad / "log.txt").read_text()
    assert "FAILED: DivergenceError: train_loss became" in failed and "Traceback" in failed
    assert (out / "mlartifacts").is_dir()  # the folder the printed `mlflow ui` command points at

    store = SQLStore(f"sqlite:///{out / 'spikelab.db'}")
    try:
        (run,) = [r for r in store.runs(store.get_experiment("folders").id) if Path(r.output_dir) == ok]
        artifacts = {Path(path).name: sha for _, path, sha, _ in store.artifacts(run.id)}
    finally:
        store.close()
    for name, path in (("log.txt", ok / "log.txt"), ("learning_curves.png", ok / "plots" / "learning_curves.png")):
        assert artifacts[name] == hashlib.sha256(path.read_bytes()).hexdigest()  # recorded after the last write


def test_the_default_relative_database_follows_the_working_directory(tmp_path: Path, monkeypatch, capsys):
    """Two projects in one process (a notebook that changes folder): each run lands in the
    ``outputs/spikelab.db`` of the folder it was started from, never in a cached earlier one."""
    for name in ("first", "second"):
        project = tmp_path / name
        folder = write_experiment(project / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"),
                                  experiment=f"name: {name}\nrepeat: 1\nmlflow: {{enabled: false}}\nrun_plots: false\n")
        monkeypatch.chdir(project)
        assert main.main(["run", str(folder), "--no-progress"]) == 0
        store = SQLStore(f"sqlite:///{project / 'outputs' / 'spikelab.db'}")
        try:
            assert [e.name for e in store.list_experiments()] == [name]
        finally:
            store.close()
    capsys.readouterr()
