"""Faults around a run: crafted or damaged checkpoints, lost run folders, runs finished or still
running in another process (issue 16, item 5)."""
from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from testkit import TINY_CONFIG, write_experiment

import main
from experiment import runner
from experiment.executors import InlineExecutor
from experiment.store import RunStatus, SQLStore
from pipeline.callbacks.base import Callback


class WritesAMarker:
    """Unpickling this would call ``open(path, "w")``: the code a crafted checkpoint smuggles in."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def craft(path: Path, marker: Path) -> None:
    torch.save({"epoch": 1, "seed": 0, "model": {}, "payload": WritesAMarker(str(marker))}, path)


def make(tmp_path: Path, epochs: int = 2, repeat: int = 1, trials: str = "- name: a\n",
         heartbeat_s: float = 0.5) -> tuple[Path, str]:
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", f"epochs: {epochs}"), trials,
                              experiment=f"name: faults\nbase_dir: {tmp_path / 'out'}\nrepeat: {repeat}\n"
                                         f"mlflow: {{enabled: false}}\nheartbeat_s: {heartbeat_s}\n")
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchall()


class InterruptAt(Callback):
    """Ctrl-C right after epoch ``epoch`` was checkpointed and logged."""

    order = 100

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, state, epoch, metrics):
        if epoch == self.epoch:
            raise KeyboardInterrupt("test interrupt")


def run_interrupted(monkeypatch, folder: Path, epoch: int) -> None:
    """``run`` in this process, interrupted after ``epoch``: its run is left INTERRUPTED."""
    defaults = runner.default_callbacks
    monkeypatch.setattr(runner, "default_callbacks",
                        lambda pipe, progress: defaults(pipe, progress) + [InterruptAt(epoch)])
    assert main.main(["run", str(folder), "--no-progress"]) == 130
    monkeypatch.undo()


def assert_one_row_per_key_per_epoch(db: str, epochs: int) -> None:
    keys = rows(db, "SELECT COUNT(*) FROM metric_key")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM metric")[0][0] == (epochs + 1) * keys
    assert rows(db, "SELECT COUNT(*) FROM (SELECT 1 FROM metric GROUP BY run_id, key_id, epoch "
                    "HAVING COUNT(*) > 1)")[0][0] == 0
    assert sorted(e for (e,) in rows(db, "SELECT DISTINCT epoch FROM metric")) == list(range(epochs + 1))


# --- checkpoints ----------------------------------------------------------------------------

def test_eval_refuses_a_crafted_checkpoint_in_one_line_and_runs_none_of_it(tmp_path, capsys):
    folder, _ = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    run_dir = tmp_path / "out" / "faults" / "a" / "repeat_0"
    marker, evil = tmp_path / "code_ran", tmp_path / "evil.pt"
    craft(evil, marker)
    capsys.readouterr()
    assert main.main(["eval", str(run_dir), "--checkpoint", str(evil)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert err.count("\n") == 1 and str(evil) in err and "refused" in err, err
    craft(run_dir / "checkpoints" / "best.pt", marker)  # the default, --checkpoint best
    assert main.main(["eval", str(run_dir)]) == 2
    assert not marker.exists() and str(run_dir / "checkpoints" / "best.pt") in capsys.readouterr().err


def test_eval_in_a_fresh_process_never_unpickles_code(tmp_path):
    folder, _ = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    run_dir = tmp_path / "out" / "faults" / "a" / "repeat_0"
    marker, evil = tmp_path / "code_ran", tmp_path / "evil.pt"
    craft(evil, marker)
    done = subprocess.run([sys.executable, str(Path(main.__file__)), "eval", str(run_dir), "--checkpoint", str(evil)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not marker.exists()
    assert done.stderr.startswith(f"error: --checkpoint: cannot load checkpoint {evil}: refused") \
        and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("damage", ["truncated", "crafted"])
def test_an_unusable_last_checkpoint_falls_back_to_best(tmp_path, monkeypatch, capsys, damage):
    folder, db = make(tmp_path, epochs=4)
    run_interrupted(monkeypatch, folder, epoch=2)
    checkpoints = tmp_path / "out" / "faults" / "a" / "repeat_0" / "checkpoints"
    last, marker = checkpoints / "last.pt", tmp_path / "code_ran"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[:100])
    else:
        craft(last, marker)
    best_epoch = torch.load(checkpoints / "best.pt", weights_only=True)["epoch"]
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert not marker.exists()
    assert f"cannot load checkpoint {last}" in out and f"resuming from {checkpoints / 'best.pt'}" in out, out
    log = (checkpoints.parent / "log.txt").read_text()
    assert f"cannot load checkpoint {last}" in log and f"resumed after epoch {best_epoch}" in log
    assert (checkpoints / "last.pt.unusable").is_file()
    assert rows(db, "SELECT status, attempts FROM run") == [("COMPLETED", 2)]  # no retry spent, nothing FAILED
    assert [r for (r,) in rows(db, "SELECT exit_reason FROM attempt ORDER BY number")] == ["INTERRUPTED", "COMPLETED"]
    assert_one_row_per_key_per_epoch(db, 4)


def test_no_usable_checkpoint_starts_the_run_over(tmp_path, monkeypatch, capsys):
    folder, db = make(tmp_path, epochs=4)
    run_interrupted(monkeypatch, folder, epoch=3)
    checkpoints = tmp_path / "out" / "faults" / "a" / "repeat_0" / "checkpoints"
    marker = tmp_path / "code_ran"
    craft(checkpoints / "last.pt", marker)
    (checkpoints / "best.pt").write_bytes(b"")
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert not marker.exists()
    assert f"cannot load checkpoint {checkpoints / 'last.pt'}: refused" in out
    assert f"cannot load checkpoint {checkpoints / 'best.pt'}: truncated or corrupt" in out
    assert "starts over from epoch 0" in out
    log = (checkpoints.parent / "log.txt").read_text()
    assert "starts over from epoch 0" in log and "resumed after epoch" not in log
    assert rows(db, "SELECT status, attempts FROM run") == [("COMPLETED", 2)]
    assert_one_row_per_key_per_epoch(db, 4)


# --- lost run folders -------------------------------------------------------------------------

def test_status_reports_completed_runs_whose_files_are_gone(tmp_path, capsys):
    import shutil

    folder, db = make(tmp_path, repeat=3)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    runs = tmp_path / "out" / "faults" / "a"
    shutil.rmtree(runs / "repeat_0")
    (runs / "repeat_1" / "checkpoints" / "best.pt").unlink()
    with (runs / "repeat_1" / "metrics.csv").open("a") as fh:
        fh.write("edited\n")
    capsys.readouterr()
    assert main.main(["status", "faults", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "3 completed (2 completed run(s) with missing files)" in out
    assert f"COMPLETED a/repeat_0: its run folder {runs / 'repeat_0'} is gone" in out
    # config, metrics, log, learning curves, confusion.json, best.pt, last.pt
    assert "COMPLETED a/repeat_1: 1 of its 7 recorded files are missing (best.pt); 1 changed size (metrics.csv)" in out
    assert "repeat_2" not in out
    assert main.main(["status", "faults", "--db", db, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    lost = {entry["repeat"]: entry for entry in document["missing_artifacts"]}
    assert sorted(lost) == [0, 1] and lost[0]["folder_exists"] is False and len(lost[0]["missing"]) == 7
    assert lost[1]["missing"] == [str(runs / "repeat_1" / "checkpoints" / "best.pt")]
    assert lost[1]["size_changed"] == [str(runs / "repeat_1" / "metrics.csv")]


# --- runs done or still going in another process --------------------------------------------------

def test_a_run_still_running_in_another_process_is_not_exit_0(tmp_path, capsys):
    folder, db = make(tmp_path, repeat=2, heartbeat_s=30.0)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        store = SQLStore(db)
        try:
            run = store.runs(store.get_experiment("faults").id)[1]
        finally:
            store.close()
        host = socket.gethostname()
        with sqlite3.connect(db[len("sqlite:///"):]) as con:  # claimed by the other process just now
            con.execute("UPDATE run SET status = 'RUNNING', pid = ?, host = ?, started_at = "
                        "strftime('%Y-%m-%d %H:%M:%f', 'now'), heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                        "WHERE id = ?", (other.pid, host, run.id))
        capsys.readouterr()
        assert main.main(["run", str(folder), "--no-progress"]) == 3
        out = capsys.readouterr().out
        assert (f"1 run(s) are still RUNNING in another process (a/repeat_1 (pid {other.pid} on {host})); "
                "run the same command again once they finish") in out, out
        assert rows(db, f"SELECT status FROM run WHERE id = {run.id}") == [("RUNNING",)]
    finally:
        other.kill()
        other.wait()


def test_runs_completed_by_another_process_meanwhile_are_exit_0(tmp_path, monkeypatch, capsys):
    folder, db = make(tmp_path, repeat=2)
    original = InlineExecutor.run

    def another_process_finishes_the_first(self, tasks, on_done):
        store = SQLStore(db)
        try:  # between the plan and the claim, another `run` of the same experiment completes it
            attempt = store.claim_run(tasks[0].run_id, "elsewhere", 1)
            store.finish_run(tasks[0].run_id, attempt.id, RunStatus.COMPLETED, summary={})
        finally:
            store.close()
        original(self, tasks, on_done)

    monkeypatch.setattr(InlineExecutor, "run", another_process_finishes_the_first)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped a/repeat_0: already COMPLETED" in out and "run the same command again" not in out
    assert rows(db, "SELECT status FROM run ORDER BY id") == [("COMPLETED",), ("COMPLETED",)]
