"""Bad input that used to end in a traceback, in a silent rewrite, or in a run that failed after
rows were written: each case is one `error: <where>: <path> <problem>, got <value>; <allowed>`
line from both `config` and `run`, exit code 2, and nothing written anywhere."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from settings.names import folder_name

QUICK = TINY_CONFIG.replace("epochs: 2", "epochs: 0")


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # a relative default (outputs/...) would land here, and be seen
    return write_experiment(tmp_path / "exp", QUICK,
                            experiment=f"name: bad\nbase_dir: {tmp_path / 'out'}\nmlflow: {{enabled: false}}\n")


def rejected(capsys, folder: Path, *extra: str, commands: tuple[str, ...] = ("config", "run")) -> str:
    """The one error line every command gives (the same line for all); asserts exit 2 and that
    nothing appeared in the temporary folder."""
    root = folder.parent
    before = files_under(root)
    lines = set()
    for command in commands:
        code = main.main([command, str(folder), *extra] + (["--no-progress"] if command == "run" else []))
        captured = capsys.readouterr()
        err = [line for line in captured.err.splitlines() if line.strip()]
        assert code == 2, (command, err)
        assert len(err) == 1 and err[0].startswith("error: "), (command, err)
        assert "Traceback" not in captured.err
        lines.add(err[0])
    assert len(lines) == 1, lines
    assert files_under(root) == before, "nothing may be written for invalid input"
    return lines.pop()


# --- 1. files that are not UTF-8 --------------------------------------------------------------
@pytest.mark.parametrize("name, text", [
    ("config.yaml", QUICK.encode() + b"# caf\xe9\n"),
    ("experiment.yaml", b"name: caf\xe9\n"),
    ("env.yaml", b"T: 20\n\xff\xfe\n"),
    ("trials.yaml", b"- name: caf\xe9\n"),
])
def test_a_file_that_is_not_utf8(capsys, folder, name, text):
    (folder / name).write_bytes(text)
    line = rejected(capsys, folder)
    bad = text.index(b"\xe9") if b"\xe9" in text else text.index(b"\xff")
    row = text.count(b"\n", 0, bad) + 1
    assert line.startswith(f"error: {folder / name}:{row}:")
    assert "is not valid UTF-8, got byte 0x" in line and "YAML files must be UTF-8 text" in line


# --- 2. malformed paths -----------------------------------------------------------------------
@pytest.mark.parametrize("settings, expect", [
    ('{"model.layers[x].out_features": 3}',
     "error: trial 'base': settings has a malformed path key, got 'model.layers[x].out_features'; write dot paths"),
    ('{model: {"layers[0]..out_features": 3}}',
     "error: trial 'base': settings.model has a malformed path key, got 'layers[0]..out_features'; write dot"),
])
def test_a_malformed_path_in_trial_settings(capsys, folder, settings, expect):
    (folder / "trials.yaml").write_text(f"- name: base\n  settings: {settings}\n")
    assert rejected(capsys, folder).startswith(expect)


@pytest.mark.parametrize("path", ["model.layers[x].out_features", "a..b", "optimizer.", "[0"])
def test_a_malformed_set_path(capsys, folder, path):
    line = rejected(capsys, folder, "--set", f"{path}=3")
    assert line.startswith(f"error: --set: has a malformed path, got {path!r}; write PATH=VALUE")


# --- 3. root seeds ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [str(2**63), str(2**70), "-1", "1.5", "abc", "true"])
def test_a_root_seed_outside_what_the_database_stores(capsys, folder, seed):
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\nseed: {seed}\n")
    shown = {"abc": "'abc'"}.get(seed, seed)
    assert rejected(capsys, folder) == (f"error: experiment.yaml: seed must be an integer >= 0 and < {2**63}, "
                                        f"got {shown}")


@pytest.mark.parametrize("method", ["random", "tpe"])
def test_a_search_seed_outside_that_range(capsys, folder, method):
    (folder / "trials.yaml").write_text(f"- name: s\n  search: {{method: {method}, n_trials: 2, seed: -3, "
                                        "params: {epochs: {choice: [0, 1]}}}\n")
    assert rejected(capsys, folder) == (f"error: trials.yaml (s): search.seed must be an integer >= 0 and < "
                                        f"{2**63}, got -3")


def test_the_largest_seed_is_accepted(capsys, folder):
    assert main.main(["config", str(folder), "--set", f"experiment.seed={2**63 - 1}"]) == 0


# --- 4. database URLs -------------------------------------------------------------------------
def bad_db_urls(tmp: Path) -> dict[str, tuple[str, str]]:
    """case -> (URL, what the error says)."""
    (tmp / "a_file").write_text("x")
    (tmp / "a_folder").mkdir(exist_ok=True)
    return {
        "unparsable": ("::not a url::", "is not a database URL, got '::not a url::'; allowed: sqlite:///"),
        "mysql": ("mysql://user@host/db", "is a mysql database, which the store does not support, got "
                  "'mysql://user@host/db'; allowed: sqlite:///path/to/file.db or postgresql://"),
        "unknown driver": ("postgresql+nosuch://host/db", "names a driver SQLAlchemy does not know, got "
                                                          "'postgresql+nosuch://host/db'"),
        "parent is a file": (f"sqlite:///{tmp / 'a_file' / 'x.db'}",
                             f"cannot be created: {tmp / 'a_file'} is a file, not a folder, got "),
        "a folder": (f"sqlite:///{tmp / 'a_folder'}", "names a folder, not a database file, got "),
    }


CASES = ["unparsable", "mysql", "unknown driver", "parent is a file", "a folder"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_db_in_experiment_yaml(capsys, folder, case):
    url, message = bad_db_urls(folder.parent)[case]
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\ndb: '{url}'\n")
    line = rejected(capsys, folder)
    assert line.startswith("error: experiment.yaml: db ") and message in line and repr(url) in line


@pytest.mark.parametrize("case", CASES)
def test_a_bad_db_option(capsys, folder, case):
    url, message = bad_db_urls(folder.parent)[case]
    line = rejected(capsys, folder, "--db", url, commands=("run",))
    assert line.startswith("error: --db: ") and message in line


def test_a_postgresql_url_without_its_driver(capsys, folder):
    pytest.importorskip("sqlalchemy")
    from sqlalchemy.engine import make_url

    try:
        make_url("postgresql://u@h/db").get_dialect().import_dbapi()
        pytest.skip("the PostgreSQL driver is installed here")
    except ImportError:
        pass
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\n"
                                            "db: 'postgresql://u@h/db'\n")
    line = rejected(capsys, folder)
    assert line.startswith("error: experiment.yaml: db needs the Python driver psycopg")
    assert "which is not installed, got 'postgresql://u@h/db'; install it (pip install" in line


def test_a_folder_that_is_not_writable(capsys, folder, monkeypatch):
    """Root may write anywhere, so the permission answer is simulated: the check asks os.access."""
    import experiment.outputs

    denied = folder.parent / "locked"
    denied.mkdir()
    real = os.access
    monkeypatch.setattr(experiment.outputs.os, "access",
                        lambda path, mode: False if Path(path) == denied else real(path, mode))
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\n"
                                            f"db: 'sqlite:///{denied / 'sub' / 'x.db'}'\n")
    line = rejected(capsys, folder)
    assert line.startswith(f"error: experiment.yaml: db cannot be created: the folder {denied} is not writable")
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {denied / 'out'}\n")
    assert rejected(capsys, folder).startswith(f"error: experiment.yaml: base_dir cannot hold the results: the "
                                               f"folder {denied} is not writable, got '{denied / 'out'}'")


# --- 5. MLflow tracking URIs ------------------------------------------------------------------
@pytest.mark.parametrize("uri, message", [
    ("ftp://host/mlruns", "is a ftp:// URI, which the MLflow mirror does not support"),
    ("mlruns", "is a plain path, which the MLflow mirror does not support"),
    ("file:///tmp/mlruns", "is a file:// URI, which the MLflow mirror does not support"),
    ("http://", "names no host"),
    ("mysql://u@h/m", "is a mysql:// URI, which the MLflow mirror does not support"),
])
def test_an_unsupported_mlflow_uri(capsys, folder, uri, message):
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\n"
                                            f"mlflow: {{tracking_uri: '{uri}'}}\n")
    line = rejected(capsys, folder)
    assert line.startswith("error: experiment.yaml: mlflow.tracking_uri ") and message in line
    assert f"got {uri!r}; allowed: sqlite:///path/to/mlflow.db, postgresql://user@host/name or http(s)://" in line


def test_mlflow_may_not_share_the_experiment_database(capsys, folder):
    db = f"sqlite:///{folder.parent / 'one.db'}"
    (folder / "experiment.yaml").write_text(f"name: bad\nbase_dir: {folder.parent / 'out'}\ndb: '{db}'\n"
                                            f"mlflow: {{tracking_uri: '{db}'}}\n")
    assert rejected(capsys, folder).startswith(f"error: experiment.yaml: mlflow.tracking_uri is the experiment "
                                               f"database, got {db!r}")


def test_the_mlflow_uri_is_not_checked_with_no_mlflow(capsys, folder):
    (folder / "experiment.yaml").write_text(f"name: fine\nbase_dir: {folder.parent / 'out'}\n"
                                            "mlflow: {tracking_uri: 'ftp://x/y'}\n")
    assert main.main(["run", str(folder), "--no-mlflow", "--no-progress"]) == 0


# --- 6. duplicate keys and empty trial names ---------------------------------------------------
@pytest.mark.parametrize("name, text, line, key", [
    ("config.yaml", QUICK.replace("epochs: 0\n", "epochs: 0\nepochs: 1\n"), 10, "'epochs'"),
    ("config.yaml", QUICK.replace("{type: Adam, lr: 0.01}", "{type: Adam, lr: 0.01, lr: 0.1}"), 8, "'lr'"),
    ("env.yaml", "T: 20\ndt: 1.0\nT: 30\n", 3, "'T'"),
    ("experiment.yaml", "name: a\nrepeat: 2\nname: b\n", 3, "'name'"),
    ("trials.yaml", "- name: a\n  repeat: 1\n  repeat: 2\n", 3, "'repeat'"),
])
def test_a_key_written_twice(capsys, folder, name, text, line, key):
    (folder / name).write_text(text)
    found = rejected(capsys, folder)
    assert found.startswith(f"error: {folder / name}:{line}:")
    assert f"invalid YAML: duplicate key: got {key} a second time (first at line" in found


def test_merge_keys_may_still_be_overridden(capsys, folder):
    (folder / "trials.yaml").write_text("- &a {name: a, repeat: 2, settings: {epochs: 0}}\n"
                                        "- {<<: *a, name: b, settings: {epochs: 1}}\n")
    assert main.main(["config", str(folder)]) == 0


@pytest.mark.parametrize("name", ['""', '"   "', "''"])
def test_an_empty_trial_name(capsys, folder, name):
    (folder / "trials.yaml").write_text(f"- name: {name}\n")
    line = rejected(capsys, folder)
    assert line.startswith("error: trials.yaml: [0].name must be a non-empty name, got ")


# --- 7. names that would leave base_dir or collide ------------------------------------------------
CRAFTED = ["../../etc", "..", ".", ".hidden", "a/b", "/abs", "a\\b", "..\\..\\x", "a\x00b", "a\nb", "tab\tx",
           "zero\u200bwidth", "x/../../y", "x" * 300, "é" * 200]


@pytest.mark.parametrize("name", CRAFTED)
@pytest.mark.parametrize("where", ["experiment", "trial"])
def test_a_crafted_name_writes_nothing(capsys, tmp_path, monkeypatch, name, where):
    base = tmp_path / "deep" / "base"
    base.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    quoted = '"' + name.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    experiment = f"name: {quoted if where == 'experiment' else 'fine'}\nbase_dir: {base}\nmlflow: {{enabled: false}}\n"
    folder = write_experiment(tmp_path / "deep" / "exp", QUICK, f"- name: {quoted if where == 'trial' else 'ok'}\n",
                              experiment=experiment)
    before = files_under(tmp_path)
    for command in ("config", "run"):
        assert main.main([command, str(folder), "--no-progress"][: 2 if command == "config" else 3]) == 2
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith(f"error: {'experiment.yaml: name' if where == 'experiment' else 'trials.yaml: [0].name'} ")
    assert files_under(tmp_path) == before


def test_a_crafted_experiment_name_from_the_command_line(capsys, folder):
    line = rejected(capsys, folder, "--set", "experiment.name=../../etc")
    assert line.startswith("error: --set: experiment.name must not hold a path separator or control character, got "
                           "'../../etc'")


def test_names_map_to_folders_one_to_one_inside_their_parent():
    names = ["日本", "中文", "ü", "é", "a b", "a_b", "a%20b", "a:b", "a*b", "a?b", "ÄÖ", " lead", "%", "%25",
             "x.y", "x..y"]
    rng = random.Random(0)
    alphabet = "ab._-% /\\:*?\"<>|\x00\n\u200béü日"
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(2000)]
    folders = {}
    for name in set(names):
        folder = folder_name(name)
        assert "/" not in folder and "\\" not in folder and "\x00" not in folder and not folder.startswith(".")
        assert folder not in ("", ".", "..") and folder.isprintable()
        assert folders.setdefault(folder, name) == name, (name, folders[folder])
    assert folder_name("日本") == "日本" and folder_name("run-1_a=0.5") == "run-1_a=0.5"


def test_an_odd_but_valid_name_runs_inside_base_dir(tmp_path, monkeypatch):
    base = tmp_path / "base"
    monkeypatch.chdir(tmp_path)
    trials = '- name: "grüße: a*b?"\n- name: "日本"\n  settings: {batch_size: 16}\n'
    folder = write_experiment(tmp_path / "exp", QUICK, trials,
                              experiment=f"name: 中文 实验\nbase_dir: {base}\nmlflow: {{enabled: false}}\n")
    before = files_under(tmp_path)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    new = files_under(tmp_path) - before
    assert new and all(p == base or base in p.parents for p in new), sorted(p for p in new if base not in p.parents)
    assert (base / "中文 实验" / "grüße%3A a%2Ab%3F" / "repeat_0").is_dir()
    assert (base / "中文 实验" / "日本" / "repeat_0").is_dir()


# --- 8. problems that used to surface only after runs were written ------------------------------
@pytest.mark.parametrize("trials, extra, expect", [
    ("- name: base\n  settings: {model: {readout: {out_features: 3}}}\n", (),
     "error: trial 'base': model.readout.out_features is too small for the data: the model has 3 output(s) but "
     "the data has 10 classes, got 3; set the readout's"),
    ("- name: grid\n  sweep: {model.readout.out_features: [10, 4]}\n", (),
     "error: trial 'grid-out_features=4': model.readout.out_features is too small for the data: the model has 4"),
    ("- name: base\n", ("--set", "model.readout.out_features=2"),
     "error: --set: model.readout.out_features is too small for the data: the model has 2 output(s)"),
])
def test_too_few_outputs_for_the_classes(capsys, folder, trials, extra, expect):
    (folder / "trials.yaml").write_text(trials)
    assert rejected(capsys, folder, *extra).startswith(expect)


@pytest.mark.parametrize("callback, path, name", [
    ("{type: EarlyStopping, monitor: val_accuracy, mode: max}", "callbacks[0].monitor", "val_accuracy"),
    ("{type: ModelCheckpoint, monitor: val_acc/label_10}", "callbacks[0].monitor", "val_acc/label_10"),
    ("{type: EarlyStopping, monitor: spikes}", "callbacks[0].monitor", "spikes"),
    ("{type: ReduceLROnPlateau, monitor: val_los}", "scheduler.monitor", "val_los"),
    ("{monitor: val_accuracy}", "selection.monitor", "val_accuracy"),
])
def test_a_monitor_no_run_produces(capsys, folder, callback, path, name):
    key = path.split(".")[0].split("[")[0]
    (folder / "config.yaml").write_text(QUICK + (f"{key}: [{callback}]\n" if key == "callbacks" else
                                                 f"{key}: {callback}\n"))
    line = rejected(capsys, folder)
    assert line.startswith(f"error: trial 'base': {path} is not a metric this run produces, got {name!r}")
    assert "; allowed: epoch_time_s, lr, spikes_per_sample, " in line and "val_acc, val_loss" in line


def test_a_val_monitor_without_a_validation_split(capsys, folder):
    config = QUICK.replace("val_fraction: 0.2", "val_fraction: 0.0") + "callbacks: [{type: EarlyStopping}]\n"
    (folder / "config.yaml").write_text(config)
    assert rejected(capsys, folder).startswith("error: trial 'base': callbacks[0].monitor is not a metric this run "
                                               "produces, got 'val_loss'")
    (folder / "config.yaml").write_text(config.replace("{type: EarlyStopping}", "{type: EarlyStopping, "
                                                                                 "monitor: train_loss}"))
    assert main.main(["config", str(folder)]) == 0
    (folder / "config.yaml").write_text(config.replace("callbacks: [{type: EarlyStopping}]",
                                                       "selection: {monitor: val_loss, mode: min}"))
    assert main.main(["config", str(folder)]) == 0  # the training split stands in for the selection


def test_an_infinite_learning_rate(capsys, folder):
    (folder / "config.yaml").write_text(QUICK.replace("lr: 0.01", "lr: .inf"))
    assert rejected(capsys, folder) == ("error: trial 'base': optimizer.lr must be a finite number, got inf; "
                                        "allowed: a number such as 0.01")


@pytest.mark.parametrize("value", [".nan", "-.inf"])
def test_a_nan_or_negative_learning_rate_is_refused_by_torch(capsys, folder, value):
    line = rejected(capsys, folder, "--set", f"optimizer.lr={value}")
    shown = "nan" if value == ".nan" else "-inf"
    assert line == f"error: trial 'base': optimizer is rejected by torch Adam: Invalid learning rate: {shown}"


def test_a_run_too_large_for_memory(capsys, folder):
    (folder / "config.yaml").write_text(QUICK.replace("out_features: 16", "out_features: 1000000000"))
    line = rejected(capsys, folder)
    assert line.startswith("error: trial 'base': model.layers[0].out_features makes one run need at least ")
    assert "got 1000000000; " in line
    assert line.endswith("is available here: make the layers, batch_size, T or the data smaller")


@pytest.mark.parametrize("params, expect", [
    ('{"model.layers[0].out_features": {randint: [8, 1000000000]}}',
     "error: trials.yaml (s): model.layers[0].out_features makes one run need at least "),
    ("{optimizer.lr: {uniform: [0.001, .inf]}}",
     "error: trials.yaml (s): search.params.optimizer.lr.uniform must be [low, high] with finite low < high, got "
     "[0.001, inf]"),
])
def test_a_search_space_whose_far_corner_cannot_run(capsys, folder, params, expect):
    """A model-based search samples its points while the experiment runs: both corners of the space
    are checked before anything is written."""
    (folder / "trials.yaml").write_text(f"- name: s\n  search: {{method: tpe, n_trials: 2, params: {params}}}\n")
    assert rejected(capsys, folder).startswith(expect)
