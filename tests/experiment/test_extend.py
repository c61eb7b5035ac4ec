"""``run --set epochs=N --extend``: a completed run trains on from its last checkpoint, as the
same run, and ends where a fresh run of N epochs with the same seed ends."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, wait_for_epoch, write_experiment

import main
from experiment.store import RunStatus, SchemaOutdated, SQLStore, current_revision, head_revision, upgrade

# a schedule that does not depend on the epoch count; EarlyStopping keeps state across the extension
CONFIG = TINY_CONFIG.replace("epochs: 2\n", "epochs: 3\n") + (
    "scheduler: {type: StepLR, step_size: 2, gamma: 0.5}\n"
    "callbacks:\n  - {type: EarlyStopping, monitor: val_loss, patience: 50}\n")
TIMES = ("epoch_time_s",)


def make(tmp_path: Path, name: str, epochs: int = 3) -> tuple[Path, str]:
    out = tmp_path / name
    folder = write_experiment(tmp_path / f"{name}_src", CONFIG.replace("epochs: 3\n", f"epochs: {epochs}\n"),
                              "- name: a\n",
                              env="threads: 1\n",
                              experiment=f"name: {name}\nbase_dir: {out}\nrepeat: 1\nmlflow: {{enabled: false}}\n"
                                         "run_plots: false\n")
    return folder, f"sqlite:///{out / 'spikelab.db'}"


def metric_rows(db: str) -> dict[tuple[str, int], float]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        rows = con.execute("SELECT k.name, m.epoch, m.value FROM metric m JOIN metric_key k ON k.id = m.key_id")
        return {(key, epoch): value for key, epoch, value in rows if key not in TIMES}


def summary(db: str) -> dict[str, float]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return {k: v for k, v in con.execute("SELECT key, value FROM summary") if "time" not in k}


def test_extended_run_equals_a_fresh_run_and_is_the_same_run(tmp_path, capsys):
    folder, db = make(tmp_path, "short")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    before = metric_rows(db)
    store = SQLStore(db, readonly=True)
    (run,) = store.runs(store.get_experiment("short").id)
    store.close()
    capsys.readouterr()

    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=6", "--extend"]) == 0
    assert "extending 1 run(s) to 6 epochs" in capsys.readouterr().out
    extended = metric_rows(db)
    assert {k: v for k, v in extended.items() if k[1] <= 3} == before  # the first 3 epochs kept as they were
    assert max(epoch for _, epoch in extended) == 6

    fresh_folder, fresh_db = make(tmp_path, "long", epochs=6)
    assert main.main(["run", str(fresh_folder), "--no-progress"]) == 0
    assert extended == metric_rows(fresh_db)  # metric for metric, lr and test_acc included
    assert summary(db) == summary(fresh_db)

    store = SQLStore(db, readonly=True)
    exp = store.get_experiment("short")
    (again,) = store.runs(exp.id)
    (trial,) = store.trials(exp.id)
    attempts = store.attempts(run.id)
    store.close()
    assert (again.id, again.config_hash, again.seed, again.output_dir) == (run.id, run.config_hash, run.seed,
                                                                            run.output_dir)
    assert again.status == RunStatus.COMPLETED and again.extended_epochs == 6
    assert trial.config["epochs"] == 3 and exp.version == 1  # not a new config, not a new version
    assert [a.exit_reason for a in attempts] == ["COMPLETED", "COMPLETED"]
    log = (Path(run.output_dir) / "log.txt").read_text()
    assert "resuming from last.pt, extended to 6 epochs" in log and "resumed after epoch 3" in log
    assert json.loads((Path(run.output_dir) / "run.json").read_text())["extended_epochs"] == 6

    capsys.readouterr()
    assert main.main(["status", "short", "--db", db]) == 0
    assert "extended a/repeat_0: 3 -> 6 epochs" in capsys.readouterr().out
    assert main.main(["status", "short", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["extended"] == [
        {"trial": "a", "repeat": 0, "run_id": run.id, "configured_epochs": 3, "epochs": 6}]
    assert main.main(["show", "short", "--db", db]) == 0
    assert "extended runs: a/repeat_0: 3 -> 6 epochs" in capsys.readouterr().out

    # the plain command still finds its runs complete; the same extension again does nothing
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert "skipping 1 completed run(s)" in capsys.readouterr().out
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=6", "--extend"]) == 0
    assert "0 to run" in capsys.readouterr().out


def test_extending_to_fewer_epochs_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder, db = make(tmp_path, "short")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    path = Path(db[len("sqlite:///"):])
    mtime, size = path.stat().st_mtime_ns, path.stat().st_size
    rows = metric_rows(db)
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=2", "--extend"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --extend: epochs=2 is fewer than the 3 that run a/repeat_0 already has; an extension "
                   "only adds epochs"]
    assert metric_rows(db) == rows and (path.stat().st_mtime_ns, path.stat().st_size) == (mtime, size)


def test_extend_needs_epochs_and_an_unchanged_trial(tmp_path, capsys):
    folder, db = make(tmp_path, "short")
    assert main.main(["run", str(folder), "--no-progress", "--extend", "--set", "epochs=4"]) == 2
    assert "has no recorded runs to extend" in capsys.readouterr().err
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--extend"]) == 2
    assert "error: --extend: needs --set epochs=N" in capsys.readouterr().err
    assert main.main(["run", str(folder), "--no-progress", "--extend", "--set", "epochs=4",
                      "--set", "optimizer.lr=0.5"]) == 2
    assert "changed since experiment 'short' version 1 recorded it (optimizer.lr" in capsys.readouterr().err
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=4"]) == 2
    assert "or --extend to train its runs on to more epochs" in capsys.readouterr().err


def test_an_extension_in_another_process_while_this_one_reads_the_database(tmp_path, capsys):
    """A researcher's notebook reads the database (plain sqlite3, ``status``) while a ``run
    --extend`` in another process appends the epochs."""
    folder, db = make(tmp_path, "short")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    root = Path(__file__).resolve().parents[2]
    writer = subprocess.Popen([sys.executable, str(root / "main.py"), "run", str(folder), "--no-progress",
                               "--set", "epochs=8", "--extend"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for_epoch(Path(db[len("sqlite:///"):]), 5)
        capsys.readouterr()
        assert main.main(["status", "short", "--db", db, "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["extended"][0]["epochs"] == 8
        assert document["totals"]["RUNNING"] + document["totals"]["COMPLETED"] == 1
    finally:
        out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    rows = metric_rows(db)
    assert sorted({epoch for _, epoch in rows}) == list(range(9))
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM (SELECT run_id, key_id, epoch FROM metric GROUP BY 1, 2, 3 "
                           "HAVING COUNT(*) > 1)").fetchone()[0] == 0


def test_a_database_of_the_first_schema_upgrades_to_extended_epochs(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    with pytest.raises(SchemaOutdated, match="python main.py db upgrade --db"):
        SQLStore(url)
    upgrade(url)
    assert current_revision(url) == head_revision()
    with sqlite3.connect(tmp_path / "old.db") as con:
        assert "extended_epochs" in {row[1] for row in con.execute("PRAGMA table_info(run)")}


def test_a_recorded_extension_that_did_not_finish_is_completed_by_a_plain_run(tmp_path, capsys):
    """The extension is recorded on the run (a ``run --extend`` stopped before its runs ended):
    the next plain ``run`` trains the runs to the recorded epochs, from their checkpoint."""
    folder, db = make(tmp_path, "short")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    store = SQLStore(db)
    (run,) = store.runs(store.get_experiment("short").id)
    store.extend_runs([run.id], 5)
    assert store.run(run.id).status == RunStatus.PENDING
    store.close()
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert "1 to run" in capsys.readouterr().out
    assert max(epoch for _, epoch in metric_rows(db)) == 5
    assert "resuming from last.pt, extended to 5 epochs" in (Path(run.output_dir) / "log.txt").read_text()
