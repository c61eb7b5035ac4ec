"""A run keeps its identity: one config per trial name and version, one trial per config, one
folder per trial, one database per version folder; and the exit code tells whether runs FAILED."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from testkit import TINY_CONFIG, write_experiment

import main


def make(tmp_path: Path, trials: str = "- name: a\n", repeat: int = 1, extra: str = "") -> tuple[Path, str]:
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG, trials,
                              experiment=f"name: tiny\nbase_dir: {tmp_path / 'out'}\nrepeat: {repeat}\n"
                                         "mlflow: {enabled: false}\n" + extra)
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchall()


def files_under(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_a_changed_trial_config_is_refused_without_fresh(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    before = files_under(tmp_path / "out")
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=3"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert "trial 'a' changed" in errors[0] and "epochs 2 -> 3" in errors[0] and "--fresh" in errors[0]
    assert files_under(tmp_path / "out") == before  # nothing written: no rows, no folders, no config copy
    assert rows(db, "SELECT COUNT(*) FROM run") == [(1,)]
    # a new version is fine, and so are new trials and more repeats in the same version
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=3", "--fresh"]) == 0
    write_experiment(folder, TINY_CONFIG, "- name: a\n  repeat: 2\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n")
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=3"]) == 0
    assert rows(db, "SELECT e.version, COUNT(*) FROM run r JOIN experiment e ON e.id = r.experiment_id "
                    "GROUP BY 1 ORDER BY 1") == [(1, 1), (2, 3)]


def test_the_saved_config_folder_keeps_the_overrides(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: a\n- name: b\n  settings: {epochs: 4, optimizer: {lr: 0.02}}\n")
    assert main.main(["run", str(folder), "--no-progress", "--set", "epochs=1", "--set", "env.T=50"]) == 0
    saved = tmp_path / "out" / "tiny" / "config"
    capsys.readouterr()
    assert main.main(["run", str(saved), "--no-progress"]) == 0  # the same configs: nothing new to run
    assert "0 to run" in capsys.readouterr().out
    assert rows(db, "SELECT COUNT(*) FROM run") == [(2,)]
    (saved / "trials.yaml").write_text("- name: a\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n")
    assert main.main(["run", str(saved), "--no-progress"]) == 2  # without the overrides: refused
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 2 and all("changed since experiment 'tiny' version 1" in e for e in errors)
    assert "trial 'a'" in errors[0] and "T 50.0 -> 100.0" in errors[0] and "trial 'b'" in errors[1]


def test_two_trials_with_the_same_config_are_refused(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: baseline\n- name: control\n  settings: {epochs: 2}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert "trials 'baseline' and 'control' resolve to the same config" in errors[0]
    assert "make them differ or drop one" in errors[0]
    assert not (tmp_path / "out").exists()
    assert main.main(["config", str(folder)]) == 2  # `config` refuses it the same way
    assert error_lines(capsys.readouterr().err) == errors


def test_a_trial_and_a_sweep_point_with_the_same_config_are_refused(tmp_path, capsys):
    trials = "- name: base\n- name: grid\n  sweep: {optimizer.lr: [0.01, 0.02]}\n"
    folder, db = make(tmp_path, trials=trials)
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].count("'base' and 'grid-") == 1 and "same config" in errors[0]
    assert not (tmp_path / "out").exists()


def test_a_new_trial_with_a_recorded_config_is_refused(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    write_experiment(folder, TINY_CONFIG, "- name: a\n- name: renamed\n")
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--trial", "renamed"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "'renamed' resolves to the same config as trial 'a'" in errors[0]
    assert rows(db, "SELECT name FROM trial") == [("a",)]


def test_trial_names_never_share_a_folder(tmp_path, capsys):
    """A name with a path separator is refused (it used to be rewritten into another trial's folder)."""
    folder, db = make(tmp_path, trials="- name: a/b\n- name: a_b\n  settings: {optimizer: {lr: 0.02}}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].startswith("error: trials.yaml: [0].name must not hold a path separator")
    assert not (tmp_path / "out").exists()
    folder, db = make(tmp_path, trials="- name: Fast\n- name: fast\n  settings: {optimizer: {lr: 0.02}}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert errors == ["error: trials.yaml: trials 'Fast' and 'fast' differ only in letter case, so they would share "
                      "a run folder on macOS and Windows; rename one"]
    assert not (tmp_path / "out").exists()


def test_a_version_folder_of_another_database_is_refused(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    before = files_under(tmp_path / "out")
    other = tmp_path / "other.db"
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--db", f"sqlite:///{other}"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "another base_dir" in errors[0] and str(tmp_path / "out" / "tiny") in errors[0]
    assert not other.exists() and files_under(tmp_path / "out") == before
    # the original database (however it is spelled) still owns it
    assert main.main(["run", str(folder), "--no-progress", "--db", db]) == 0


def test_failed_runs_left_after_the_retries_keep_exit_code_3(tmp_path, capsys):
    trials = "- name: ok\n- name: diverges\n  settings: {optimizer: {type: SGD, lr: 1.0e+38}}\n"
    folder, db = make(tmp_path, trials=trials, extra="max_retries: 0\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    assert "skipping 1 failed run(s)" in capsys.readouterr().out
    assert rows(db, "SELECT COUNT(*) FROM attempt") == [(2,)]  # nothing ran again
    assert main.main(["run", str(folder), "--no-progress", "--trial", "ok"]) == 0  # only the selected trials count


def test_a_changed_root_seed_is_refused_and_experiment_overrides_are_saved(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress", "--set", "experiment.seed=7"]) == 0
    saved = tmp_path / "out" / "tiny" / "config"
    assert "seed: 7" in (saved / "experiment.yaml").read_text()  # the saved folder runs the same experiment
    capsys.readouterr()
    assert main.main(["run", str(saved), "--no-progress"]) == 0
    assert "skipping 1 completed run(s)" in capsys.readouterr().out
    before = files_under(tmp_path / "out")
    assert main.main(["run", str(folder), "--no-progress"]) == 2  # seed 0 again: not the recorded runs' seed
    errors = error_lines(capsys.readouterr().err)
    assert errors == ["error: experiment.yaml: seed 7 -> 0 since experiment 'tiny' version 1 recorded its runs; "
                      "run with --fresh for a new version, or restore it"]
    assert files_under(tmp_path / "out") == before
    assert main.main(["run", str(folder), "--no-progress", "--fresh"]) == 0
    assert rows(db, "SELECT version, root_seed FROM experiment ORDER BY version") == [(1, 7), (2, 0)]


def test_reserved_trial_names_are_refused(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: config\n- name: b\n  settings: {epochs: 1}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: trials.yaml: trial name 'config' is reserved (outputs/<experiment>/config/ holds the "
        "experiment's own files); rename it"]
    assert not (tmp_path / "out").exists()


def test_a_version_folder_the_database_no_longer_records_is_refused(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    for suffix in ("", "-wal", "-shm"):
        Path(db[len("sqlite:///"):] + suffix).unlink(missing_ok=True)  # the database is deleted, the runs stay
    before = files_under(tmp_path / "out" / "tiny")
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert "holds the runs of experiment 'tiny' version 1, which" in error and "no longer records" in error
    assert files_under(tmp_path / "out" / "tiny") == before


def test_an_older_version_folder_does_not_grow_the_latest_version(tmp_path, capsys):
    folder, db = make(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert main.main(["run", str(folder), "--no-progress", "--fresh"]) == 0
    capsys.readouterr()
    assert main.main(["run", str(tmp_path / "out" / "tiny"), "--no-progress"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert "is version 1 of 'tiny', but runs go to its latest version (2)" in error
    assert main.main(["run", str(tmp_path / "out" / "tiny_v2"), "--no-progress"]) == 0  # the latest's own folder


def test_a_trial_filtered_run_leaves_the_saved_config_as_it_was(tmp_path, capsys):
    folder, db = make(tmp_path, trials="- name: a\n- name: b\n  settings: {epochs: 1}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    saved = (tmp_path / "out" / "tiny" / "config" / "trials.yaml").read_text()
    (folder / "trials.yaml").write_text("- name: a\n- name: b\n  settings: {epochs: 3}\n")  # b changes...
    assert main.main(["run", str(folder), "--no-progress", "--trial", "a"]) == 0  # ...but only a is run
    assert (tmp_path / "out" / "tiny" / "config" / "trials.yaml").read_text() == saved
    capsys.readouterr()
    assert main.main(["run", str(tmp_path / "out" / "tiny"), "--no-progress"]) == 0
    assert "skipping 2 completed run(s)" in capsys.readouterr().out
