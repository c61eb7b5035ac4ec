"""``python main.py run``: the database is the record; re-running resumes; failures are contained."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, sigint_as_in_a_terminal, wait_for_epoch, write_experiment

import main
from experiment.store import RunStatus, SQLStore

ROOT = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, trials: str = "- name: a\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n",
         config: str = TINY_CONFIG, repeat: int = 2) -> tuple[Path, str]:
    folder = write_experiment(tmp_path / "exp", config, trials,
                              experiment=f"name: tiny\nbase_dir: {tmp_path / 'out'}\nrepeat: {repeat}\n"
                                         "mlflow: {enabled: false}\nheartbeat_s: 0.5\n")
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def count(db: str, sql: str) -> int:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchone()[0]


def test_run_records_everything_and_a_second_run_does_nothing(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    store = SQLStore(db, readonly=True)
    exp = store.get_experiment("tiny")
    trials = store.trials(exp.id)
    runs = store.runs(exp.id)
    assert [t.name for t in trials] == ["a", "b"] and len(runs) == 4
    assert all(r.status == RunStatus.COMPLETED for r in runs)
    assert len({r.seed for r in runs}) == 2  # paired seeds: repeat k shares its seed across trials
    keys = {k for _, k, _, _ in store.metrics(exp.id)}
    assert {"train_loss", "val_acc", "test_acc", "lr", "val_acc/label_9"} <= keys
    # one metric row per key per epoch per run (epochs 0..2)
    assert count(db, "SELECT COUNT(*) FROM metric") == 4 * 3 * len(keys)
    assert count(db, "SELECT COUNT(*) FROM (SELECT run_id, key_id, epoch FROM metric GROUP BY 1, 2, 3 "
                     "HAVING COUNT(*) > 1)") == 0
    params = {(t, k): v for t, k, v in store.params(exp.id)}
    assert params[(trials[1].id, "optimizer.lr")] == 0.02 and params[(trials[0].id, "env.T")] == 100
    summaries = {(r, k) for r, k, _ in store.summaries(exp.id)}
    assert {(runs[0].id, "best_val_acc"), (runs[0].id, "test_acc_at_best_val")} <= summaries
    assert (tmp_path / "out" / "tiny" / "config" / "config.yaml").is_file()
    assert (tmp_path / "out" / "tiny" / "b" / "repeat_1" / "metrics.csv").is_file()
    store.close()
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 to run" in out and "skipping 4 completed run(s)" in out
    assert count(db, "SELECT COUNT(*) FROM run") == 4 and count(db, "SELECT COUNT(*) FROM attempt") == 4


def test_fresh_starts_a_new_version(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: a\n", repeat=1)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert main.main(["run", str(folder), "--no-progress", "--fresh"]) == 0
    assert count(db, "SELECT COUNT(*) FROM experiment") == 2 and count(db, "SELECT COUNT(*) FROM run") == 2
    assert (tmp_path / "out" / "tiny_v2" / "a" / "repeat_0" / "metrics.csv").is_file()


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, capsys):
    trials = "- name: ok\n- name: diverges\n  settings: {optimizer: {type: SGD, lr: 1.0e+38}}\n"
    folder, db = make(tmp_path, trials=trials)
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    out = capsys.readouterr().out
    assert "FAILED diverges/repeat_0" in out and "DivergenceError" in out
    store = SQLStore(db, readonly=True)
    runs = store.runs(store.get_experiment("tiny").id)
    assert [r.status.value for r in runs] == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"]
    assert runs[2].error_type == "DivergenceError" and "train_loss became nan" in runs[2].error_message
    assert "Traceback" in runs[2].error_traceback
    store.close()
    assert main.main(["status", "tiny", "--db", db]) == 0
    status = capsys.readouterr().out
    assert "FAILED diverges/repeat_0 (attempts 1): DivergenceError: train_loss became nan" in status


def test_sigint_interrupts_and_the_next_run_resumes_without_duplicates(tmp_path):
    # long enough that the interrupt always lands mid-run, also on a quiet machine
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 40").replace("out_features: 16", "out_features: 128")
    folder, db = make(tmp_path, trials="- name: long\n", config=config, repeat=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    path = tmp_path / "out" / "spikelab.db"
    wait_for_epoch(path, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT status FROM run").fetchone()[0] == "INTERRUPTED"
        done_before = con.execute("SELECT MAX(epoch) FROM metric").fetchone()[0]
    assert done_before < 40
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT status, attempts FROM run").fetchone() == ("COMPLETED", 2)
        keys = con.execute("SELECT COUNT(*) FROM metric_key").fetchone()[0]
        assert con.execute("SELECT COUNT(*) FROM metric").fetchone()[0] == 41 * keys
        assert con.execute("SELECT COUNT(DISTINCT epoch) FROM metric").fetchone()[0] == 41
        reasons = [r[0] for r in con.execute("SELECT exit_reason FROM attempt ORDER BY number")]
        assert reasons == ["INTERRUPTED", "COMPLETED"]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_status_list_show_export_json(tmp_path, capsys):
    import json

    folder, db = make(tmp_path, repeat=2)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    capsys.readouterr()
    assert main.main(["list", "--db", db, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing[0]["name"] == "tiny" and listing[0]["runs"] == 4
    assert main.main(["status", "tiny", "--db", db, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["totals"]["COMPLETED"] == 4 and status["trials"]["a"]["COMPLETED"] == 2
    assert main.main(["status", "nope", "--db", db]) == 2


def test_eval_command_reproduces_the_test_split(tmp_path, capsys):
    import json

    folder, db = make(tmp_path, trials="- name: a\n", repeat=1)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    run_dir = tmp_path / "out" / "tiny" / "a" / "repeat_0"
    capsys.readouterr()
    assert main.main(["eval", str(run_dir), "--checkpoint", "last", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    store = SQLStore(db, readonly=True)
    (run,) = store.runs(store.get_experiment("tiny").id)
    final = {k: v for r, k, e, v in store.metrics(run.experiment_id) if e == 2 and k == "test_acc"}
    assert result["test_acc"] == pytest.approx(final["test_acc"], abs=1e-9)
    store.close()


def test_report_writes_plots_and_an_html_summary(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: a\n- name: b\n  settings:\n    model.layers[0].kernel.tau_m: 20.0\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    out_dir = tmp_path / "report"
    assert main.main(["report", "tiny", "--db", db, "--out", str(out_dir)]) == 0
    page = (out_dir / "index.html").read_text()
    assert "Summary over repeats" in page and "<th title='best_val_acc'>" in page
    assert "best_val_acc_mean" in (out_dir / "summary.csv").read_text()
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert "learning_curve_val_acc.png" in pngs and any(p.startswith("best_val_acc_vs_model.layers") for p in pngs)
    assert all(f"src='{name}'" in page for name in pngs)
