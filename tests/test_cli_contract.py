"""The command-line contract: read commands find every experiment and version, bad input is one
``error:`` line and exit 2 (never a traceback), and output to a closed pipe is harmless."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from experiment.store import RunStatus, SQLStore, upgrade

ROOT = Path(__file__).resolve().parents[1]
DIVERGES = "{optimizer: {type: SGD, lr: 1.0e+38}}"
DIVERGES_TOO = "{optimizer: {type: SGD, lr: 2.0e+38}}"


def make(folder: Path, trials: str = "- name: a\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n",
         repeat: int = 1) -> tuple[Path, str]:
    """An experiment whose experiment.yaml sets its own db (not the read commands' default)."""
    db = f"sqlite:///{folder / 'own.db'}"
    config = write_experiment(folder / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"), trials,
                              experiment=f"name: tiny\nbase_dir: {folder / 'out'}\ndb: {db}\nrepeat: {repeat}\n"
                                         "mlflow: {enabled: false}\n")
    return config, db


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> tuple[Path, str, str]:
    """Version 1, then version 2 (--fresh) of one experiment in its own db; the first run's output."""
    folder, db = make(tmp_path_factory.mktemp("cli"))
    capture = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"],
                             cwd=folder.parent, capture_output=True, text=True)
    assert capture.returncode == 0, capture.stderr
    assert main.main(["run", str(folder), "--no-progress", "--fresh"]) == 0
    return folder, db, capture.stdout


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Run from an empty folder, so the default database (outputs/spikelab.db) does not exist."""
    monkeypatch.chdir(tmp_path)


def error_of(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_run_prints_the_db_the_read_commands_need(two_versions, capsys):
    _, db, output = two_versions
    more = next(line for line in output.splitlines() if line.startswith("more:"))
    assert more.count(f"--db {db}") == 4 and f"| report tiny --db {db} |" in more
    assert main.main(["show", "tiny"]) == 2
    assert "no database at outputs/spikelab.db" in error_of(capsys)
    assert main.main(["show", "tiny", "--db", db]) == 0
    assert "tiny (version 2)" in capsys.readouterr().out


def test_the_default_db_gets_no_db_in_the_hint(tmp_path, capsys):
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"),
                              experiment="name: tiny\nrepeat: 1\nmlflow: {enabled: false}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0  # base_dir outputs, in tmp_path
    more = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("more:"))
    assert "--db" not in more
    assert main.main(["status", "tiny"]) == 0


def test_help_says_where_the_read_commands_look(capsys):
    with pytest.raises(SystemExit):
        main.main(["show", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: sqlite:///outputs/spikelab.db" in text and "experiment's db" not in text


def test_older_versions_are_readable(two_versions, tmp_path, capsys):
    _, db, _ = two_versions
    assert main.main(["status", "tiny", "--db", db, "--json", "--version", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert main.main(["status", "tiny", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert main.main(["show", "tiny", "--db", db, "--json", "--version", "1", "--top", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == 1 and len(document["top"]) == 1
    with SQLStore(db, readonly=True) as store:
        v1 = {r.id for r in store.runs(store.get_experiment("tiny", 1).id)}
    assert document["top"][0]["run_id"] in v1
    assert main.main(["export", "tiny", "--db", db, "--per-run", "--version", "1", "--csv",
                      str(tmp_path / "v1.csv")]) == 0
    assert "wrote 2 rows" in capsys.readouterr().out
    for command in (["show", "tiny"], ["status", "tiny"], ["report", "tiny"],
                    ["export", "tiny", "--csv", str(tmp_path / "x.csv")]):
        assert main.main([*command, "--db", db, "--version", "7"]) == 2
        assert error_of(capsys) == "error: --version: experiment 'tiny' has no version 7; versions: 1, 2"
    assert main.main(["status", "--db", db, "--version", "1"]) == 2
    assert "needs an EXPERIMENT" in error_of(capsys)


def unknown_revision_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    upgrade(url)
    with sqlite3.connect(tmp_path / "future.db") as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffff9999'")
    return url


@pytest.mark.parametrize("case", ["garbage", "dialect", "empty", "junk", "folder", "future"])
def test_a_bad_database_is_one_error_line(case, tmp_path, capsys):
    (tmp_path / "empty.db").touch()
    (tmp_path / "junk.db").write_text("not a database at all\n")
    url = {"garbage": "garbage", "dialect": "nosuch://host/db", "empty": f"sqlite:///{tmp_path / 'empty.db'}",
           "junk": f"sqlite:///{tmp_path / 'junk.db'}", "folder": f"sqlite:///{tmp_path}",
           "future": unknown_revision_db(tmp_path) if case == "future" else ""}[case]
    for command in (["list"], ["status"], ["show", "tiny"]):
        assert main.main([*command, "--db", url]) == 2
        line = error_of(capsys)
    if case == "empty":
        assert line.endswith(f"upgrade it with: python main.py db upgrade --db {url}")
    if case == "junk":
        assert "is not a SQLite database" in line
    if case == "future":
        assert "ffff9999" in line and "update Spikelab" in line
    if case in ("junk", "future"):
        assert main.main(["db", "upgrade", "--db", url]) == 2
        assert error_of(capsys) == line
        assert (tmp_path / "junk.db").read_text() == "not a database at all\n"


def test_run_refuses_a_bad_database_before_writing_anything(tmp_path, capsys):
    folder, _ = make(tmp_path)
    (tmp_path / "junk.db").write_text("junk")
    future = unknown_revision_db(tmp_path)
    for url in ("garbage", f"sqlite:///{tmp_path / 'junk.db'}", future):
        assert main.main(["run", str(folder), "--no-progress", "--db", url]) == 2
        error_of(capsys)
    assert (tmp_path / "junk.db").read_text() == "junk" and not (tmp_path / "out").exists()


def test_export_to_a_folder_is_an_error(two_versions, tmp_path, capsys):
    _, db, _ = two_versions
    assert main.main(["export", "tiny", "--db", db, "--csv", str(tmp_path)]) == 2
    assert error_of(capsys).startswith(f"error: --csv: must be a file name, got the folder {tmp_path}")


@pytest.mark.parametrize("flags, message", [
    (["--top", "0"], "error: --top: must be >= 1, got 0"),
    (["--top", "-1"], "error: --top: must be >= 1, got -1"),
    (["--metric", "nosuch"], "error: --metric: 'nosuch' is not a summary metric; available: best_epoch, "),
    (["--metric", "nosuch", "--top", "2"], "error: --metric: 'nosuch' is not a summary metric; available: "),
])
def test_show_rejects_bad_flags(two_versions, flags, message, capsys):
    _, db, _ = two_versions
    assert main.main(["show", "tiny", "--db", db, *flags]) == 2
    line = error_of(capsys)
    assert line.startswith(message)
    assert "--metric" not in message or "best_val_acc" in line


def test_show_on_an_experiment_where_every_run_failed(tmp_path, capsys):
    folder, db = make(tmp_path, trials=f"- name: x\n  settings: {DIVERGES}\n- name: y\n  settings: {DIVERGES_TOO}\n",
                      repeat=2)
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    capsys.readouterr()
    assert main.main(["show", "tiny", "--db", db, "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "  x: 2 failed" in out and "  y: 2 failed" in out
    assert "top 3 runs: no COMPLETED run to rank" in out and "available" not in out
    assert main.main(["show", "tiny", "--db", db, "--json", "--top", "3"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["top"] == [] and document["status"]["x"]["FAILED"] == 2


def test_a_closed_pipe_does_not_stop_the_sweep(tmp_path):
    folder, db = make(tmp_path, repeat=2)
    cmd = f"{sys.executable} {ROOT / 'main.py'} run {folder} --no-progress | head -1; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("experiment tiny (version 1)") and len(done.stdout.splitlines()) == 1
    assert "BrokenPipeError" not in done.stderr
    with SQLStore(db, readonly=True) as store:
        runs = store.runs(store.get_experiment("tiny").id)
    assert len(runs) == 4 and all(r.status == RunStatus.COMPLETED for r in runs)


def test_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main.main(["eval", "--help"])
    assert "data split to evaluate on" in capsys.readouterr().out


@pytest.mark.parametrize("metric, ascending", [("final_val_loss", True), ("best_val_acc", False),
                                               ("final_spikes_per_sample", True)])
def test_show_ranks_losses_lowest_first_and_accuracies_highest_first(two_versions, metric, ascending, capsys):
    import json

    _, db, _ = two_versions
    assert main.main(["show", "tiny", "--db", db, "--metric", metric, "--json"]) == 0  # --metric alone ranks
    top = json.loads(capsys.readouterr().out)["top"]
    values = [row[metric] for row in top]
    assert len(values) == 2 and values == sorted(values, reverse=not ascending)
    assert main.main(["show", "tiny", "--db", db, "--metric", metric]) == 0
    assert f"runs by {metric} ({'lowest' if ascending else 'highest'} first)" in capsys.readouterr().out
