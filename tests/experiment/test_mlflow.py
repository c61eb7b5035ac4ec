"""The MLflow mirror: experiment -> trial (parent run) -> repeat (child run), checked through the
Python client and through the REST API of a real ``mlflow server``."""
from __future__ import annotations

import logging
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiment.mlflow_mirror import (MAX_PARAM_VAL_LENGTH, MLflowCallback, ensure_experiment, ensure_parent_runs,
                                      mlflow_key, mlflow_params, mlflow_ui_command)
from pipeline.state import FitState

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "tour"
TRIALS = {
    "small_lr": {"model": {"layers": [{"type": "Dense", "kernel": {"tau_m": 10.0}}]}, "optimizer": {"lr": 0.001}},
    "big_lr": {"model": {"layers": [{"type": "Dense", "kernel": {"tau_m": 10.0}}]}, "optimizer": {"lr": 0.1}},
}
REPEATS = 2
EPOCHS = (0, 1, 2)  # epoch 0 = the untrained model
KEYS = ("train_loss", "val_acc", "val_acc/label_3", "lr", "epoch_time_s")


def epoch_metrics(epoch: int, seed: int) -> dict[str, float]:
    return {"train_loss": 2.0 / (epoch + 1) + seed, "val_acc": 0.1 * epoch + 0.01 * seed,
            "val_acc/label_3": math.nan if epoch == 0 else 0.2 * epoch, "lr": 0.01, "epoch_time_s": 0.5}


def new_state(seed: int, run_dir: Path | None = None, resumed_from: int | None = None) -> FitState:
    """A FitState without model or data: all MLflowCallback reads is history, summary and the run's identity."""
    state = FitState(pipeline=None, model=None, optimizer=None, scheduler=None, seed=seed, run_dir=run_dir,
                     epochs=EPOCHS[-1], split_sizes={}, resumed_from=resumed_from)
    if resumed_from is not None:  # what a checkpoint restores
        state.history = [{"epoch": e, **epoch_metrics(e, seed)} for e in range(resumed_from + 1)]
        state.epoch = resumed_from
    return state


def run_epochs(cb: MLflowCallback, state: FitState, epochs) -> None:
    """The epoch ends of TrainingPipeline.fit, with MetricsTracker's history and summary kept current."""
    for epoch in epochs:
        metrics = epoch_metrics(epoch, state.seed)
        state.epoch = epoch
        state.history.append({"epoch": epoch, **metrics})
        state.summary = {"final_val_acc": metrics["val_acc"], "best_epoch": epoch, "best_val_acc": metrics["val_acc"]}
        cb.on_epoch_end(state, epoch, metrics)


def fit(cb: MLflowCallback, state: FitState, epochs=EPOCHS) -> None:
    cb.on_fit_start(state)
    run_epochs(cb, state, epochs)
    cb.on_fit_end(state)


@dataclass
class Mirror:
    uri: str
    folder: Path
    parents: dict[str, str]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Mirror:
    """2 trials x 2 repeats x 3 epochs mirrored into one SQLite tracking store (shared: creating
    MLflow's schema takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    parents = ensure_parent_runs(uri, EXPERIMENT, TRIALS)
    for trial, parent in parents.items():
        for repeat in range(REPEATS):
            name = f"{trial}/repeat_{repeat}"
            cb = MLflowCallback(uri, EXPERIMENT, parent, name, TRIALS[trial], tags={"spikelab.run_id": name})
            fit(cb, new_state(repeat, folder / name))
            assert not cb.disabled
    return Mirror(uri, folder, parents)


@pytest.fixture
def client(mirror):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mirror.uri)


def children(client, parent_id: str) -> list:
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")


def steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_experiment_has_a_parent_run_per_trial_and_a_child_run_per_repeat(mirror, client):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    assert experiment.artifact_location == str(mirror.folder.resolve() / "mlartifacts")
    parents = client.search_runs([experiment.experiment_id], "tags.`spikelab.kind` = 'trial'")
    assert sorted(p.info.run_name for p in parents) == sorted(TRIALS)
    for parent in parents:
        trial = parent.info.run_name
        assert mirror.parents[trial] == parent.info.run_id
        # a parent waits for its repeats: the session (mlflow_sync.update_parents) finishes it
        assert parent.data.tags["spikelab.trial"] == trial and parent.info.status == "RUNNING"
        assert parent.data.params["model.layers.0.kernel.tau_m"] == "10.0"
        assert parent.data.params["optimizer.lr"] == str(TRIALS[trial]["optimizer"]["lr"])
        kids = children(client, parent.info.run_id)
        assert sorted(k.info.run_name for k in kids) == [f"{trial}/repeat_{r}" for r in range(REPEATS)]
        for kid in kids:
            assert kid.info.status == "FINISHED"
            assert kid.data.tags["spikelab.kind"] == "repeat"
            assert kid.data.tags["spikelab.run_id"] == kid.info.run_name
            assert kid.data.tags["spikelab.run_dir"].endswith(kid.info.run_name)
            assert kid.data.params == parent.data.params


def test_every_metric_has_one_point_per_epoch(mirror, client):
    for trial, parent in mirror.parents.items():
        for kid in children(client, parent):
            seed = int(kid.info.run_name.rsplit("_", 1)[1])
            for key in KEYS:
                history = client.get_metric_history(kid.info.run_id, key)
                assert sorted(m.step for m in history) == list(EPOCHS), key
                for m in history:
                    expected = epoch_metrics(m.step, seed)[key]
                    assert (math.isnan(m.value) and math.isnan(expected)) or m.value == pytest.approx(expected)
            summary = {k: v for k, v in kid.data.metrics.items() if k.startswith("summary.")}
            assert summary == pytest.approx({"summary.final_val_acc": 0.2 + 0.01 * seed, "summary.best_epoch": 2,
                                             "summary.best_val_acc": 0.2 + 0.01 * seed})
            assert steps(client, kid.info.run_id, "summary.best_epoch") == [EPOCHS[-1]]


def test_parent_runs_are_found_again(mirror, client):
    assert ensure_parent_runs(mirror.uri, EXPERIMENT, TRIALS) == mirror.parents
    first = ensure_parent_runs(mirror.uri, "changing", {"t": {"lr": 1}})
    changed = ensure_parent_runs(mirror.uri, "changing", {"t": {"lr": 2}})
    assert changed["t"] != first["t"]  # a changed config gets its own parent, not conflicting params
    assert ensure_parent_runs(mirror.uri, "changing", {"t": {"lr": 1}}) == first
    assert ensure_experiment(mirror.uri, "changing") == client.get_experiment_by_name("changing").experiment_id


@pytest.mark.parametrize("logged_before_kill", [0, 2, 3], ids=["no-earlier-child", "killed-at-epoch-2",
                                                                "killed-after-epoch-2"])
def test_a_resumed_fit_continues_its_child_run_without_duplicate_steps(mirror, client, logged_before_kill):
    experiment = f"resume_{logged_before_kill}"
    parent = ensure_parent_runs(mirror.uri, experiment, {"t": {"lr": 1}})["t"]
    earlier = None
    if logged_before_kill:
        cb = MLflowCallback(mirror.uri, experiment, parent, "t/repeat_0", {"lr": 1})
        state = new_state(0)
        cb.on_fit_start(state)
        run_epochs(cb, state, range(logged_before_kill))
        cb.on_exception(state, KeyboardInterrupt())
        earlier = cb.run_id
        assert client.get_run(earlier).info.status == "KILLED"
    # the checkpoint of epoch 1 restores epochs 0..1; the fit goes on with epochs 2 and 3
    cb = MLflowCallback(mirror.uri, experiment, parent, "t/repeat_0", {"lr": 1})
    fit(cb, new_state(0, resumed_from=1), epochs=(2, 3))
    kids = children(client, parent)
    assert [k.info.run_id for k in kids] == [cb.run_id]
    if earlier is not None:
        assert cb.run_id == earlier
    assert kids[0].info.status == "FINISHED"
    for key in KEYS:
        assert steps(client, cb.run_id, key) == [0, 1, 2, 3], key


def test_a_fresh_restart_replaces_the_child_of_a_failed_attempt(mirror, client):
    parent = ensure_parent_runs(mirror.uri, "restart", {"t": {"lr": 1}})["t"]
    failed = MLflowCallback(mirror.uri, "restart", parent, "t/repeat_0", {"lr": 1})
    state = new_state(0)
    failed.on_fit_start(state)
    run_epochs(failed, state, [0])
    failed.on_exception(state, RuntimeError("train_loss became nan at epoch 1"))
    run = client.get_run(failed.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["spikelab.error"] == "RuntimeError: train_loss became nan at epoch 1"

    retry = MLflowCallback(mirror.uri, "restart", parent, "t/repeat_0", {"lr": 1})
    fit(retry, new_state(0))
    assert [k.info.run_id for k in children(client, parent)] == [retry.run_id]
    assert client.get_run(failed.run_id).info.lifecycle_stage == "deleted"
    assert steps(client, retry.run_id, "val_acc") == list(EPOCHS)


def test_store_errors_are_retried_then_switch_the_mirror_off(mirror, client, caplog):
    from mlflow.exceptions import MlflowException

    parent = ensure_parent_runs(mirror.uri, "flaky", {"t": {"lr": 1}})["t"]
    cb = MLflowCallback(mirror.uri, "flaky", parent, "t/repeat_0", {"lr": 1})
    cb.retry_wait_s = 0.0
    state = new_state(0)
    cb.on_fit_start(state)
    real_log_batch = cb._client.log_batch
    calls = []

    def locked_twice(*args, **kwargs):
        calls.append(args)
        if len(calls) <= 2:
            raise MlflowException("database is locked", error_code="TEMPORARILY_UNAVAILABLE")
        return real_log_batch(*args, **kwargs)

    cb._client.log_batch = locked_twice
    run_epochs(cb, state, [0])
    assert len(calls) == 3 and not cb.disabled
    assert steps(client, cb.run_id, "val_acc") == [0]

    def always_locked(*args, **kwargs):
        calls.append(args)
        raise MlflowException("database is locked", error_code="TEMPORARILY_UNAVAILABLE")

    cb._client.log_batch = always_locked
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="experiment.mlflow_mirror"):
        run_epochs(cb, state, [1, 2])  # must not raise
        cb.on_fit_end(state)
    assert len(calls) == cb.attempts and cb.disabled  # retried, then off: epoch 2 and the end cost nothing
    assert "MLflow mirror off for t/repeat_0" in caplog.text and "database is locked" in caplog.text
    assert steps(client, cb.run_id, "val_acc") == [0]


def test_an_unusable_store_never_stops_the_fit(tmp_path, caplog):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    cb = MLflowCallback(f"sqlite:///{blocker}/mlflow.db", "x", "0" * 32, "t/repeat_0", {"lr": 1})
    cb.retry_wait_s = 0.0
    state = new_state(0)
    with caplog.at_level(logging.WARNING, logger="experiment.mlflow_mirror"):
        fit(cb, state)
        cb.on_exception(state, RuntimeError("boom"))
    assert cb.disabled and cb.run_id is None
    assert caplog.text.count("MLflow mirror off") == 1


def test_params_and_keys_fit_mlflow_rules():
    from mlflow.utils import validation

    assert mlflow_key("model.layers[0].kernel.tau_m") == "model.layers.0.kernel.tau_m"
    assert mlflow_key("val_acc/label_3") == "val_acc/label_3"
    assert mlflow_key("a[0][1].b<c>") == "a.0.1.b_c_"
    nested = {"model": {"layers": [{"tau": 5}, {"tau": 7}]}, "tags": [], "name": "x" * 7000}
    flat = {"model.layers[0].tau": 5, "model.layers[1].tau": 7, "tags": [], "name": "x" * 7000}
    params = mlflow_params(nested)
    assert params == mlflow_params(flat)
    assert params["model.layers.1.tau"] == "7" and params["tags"] == "[]"
    assert len(params["name"]) == MAX_PARAM_VAL_LENGTH
    for key in params:
        validation._validate_param_name(key)
    from experiment import mlflow_mirror

    for limit in ("MAX_PARAMS_TAGS_PER_BATCH", "MAX_ENTITIES_PER_BATCH", "MAX_PARAM_VAL_LENGTH",
                  "MAX_TAG_VAL_LENGTH", "MAX_ENTITY_KEY_LENGTH"):
        assert getattr(mlflow_mirror, limit) == getattr(validation, limit), limit


def test_importing_the_mirror_does_not_import_mlflow():
    code = "import sys, experiment.mlflow_mirror; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_ui_command_is_one_mlflow_accepts(tmp_path, monkeypatch):
    import click
    from mlflow.cli import cli

    monkeypatch.chdir(tmp_path)
    command = mlflow_ui_command("sqlite:///outputs/mlflow.db")
    db, artifacts = tmp_path.resolve() / "outputs" / "mlflow.db", tmp_path.resolve() / "outputs" / "mlartifacts"
    assert command == shlex.join(["mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}",
                                  "--default-artifact-root", str(artifacts)])
    args = shlex.split(command)
    ui = cli.get_command(click.Context(cli), args[1])
    options = ui.make_context(args[1], args[2:]).params  # parses the options, starts nothing
    assert options["backend_store_uri"] == f"sqlite:///{db}" and options["default_artifact_root"] == str(artifacts)
    assert mlflow_ui_command("postgresql://u@host/db") == "mlflow ui --backend-store-uri postgresql://u@host/db"


@pytest.mark.slow
def test_mlflow_server_serves_the_runs_and_their_metrics(mirror, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from mlflow_server import get_json, mlflow_server, post_json

    with mlflow_server(mirror.uri, mirror.folder / "mlartifacts", mirror.folder) as base:
        experiment = get_json(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
        search = "/api/2.0/mlflow/runs/search"
        parents = post_json(base, search, {"experiment_ids": [experiment["experiment_id"]],
                                           "filter": "tags.`spikelab.kind` = 'trial'"})["runs"]
        assert sorted(p["info"]["run_name"] for p in parents) == sorted(TRIALS)
        for parent in parents:
            trial, parent_id = parent["info"]["run_name"], parent["info"]["run_id"]
            assert parent_id == mirror.parents[trial]
            params = {p["key"]: p["value"] for p in parent["data"]["params"]}
            assert params["optimizer.lr"] == str(TRIALS[trial]["optimizer"]["lr"])
            kids = post_json(base, search, {"experiment_ids": [experiment["experiment_id"]],
                                            "filter": f"tags.`mlflow.parentRunId` = '{parent_id}'"})["runs"]
            assert sorted(k["info"]["run_name"] for k in kids) == [f"{trial}/repeat_{r}" for r in range(REPEATS)]
            for kid in kids:
                assert kid["info"]["status"] == "FINISHED"
                seed = int(kid["info"]["run_name"].rsplit("_", 1)[1])
                for key in ("val_acc", "val_acc/label_3"):
                    history = get_json(base, "/api/2.0/mlflow/metrics/get-history",
                                       run_id=kid["info"]["run_id"], metric_key=key)["metrics"]
                    assert sorted(m["step"] for m in history) == list(EPOCHS)
                    values = {m["step"]: float(m["value"]) for m in history}  # NaN arrives as the string "NaN"
                    assert values[2] == pytest.approx(epoch_metrics(2, seed)[key])
                    assert math.isnan(values[0]) == (key == "val_acc/label_3")


def test_a_damaged_tracking_store_never_stops_a_sweep(tmp_path):
    """``run`` with an mlflow.db that is not a database: one warning, every run recorded, exit 0."""
    from testkit import TINY_CONFIG, write_experiment

    from experiment.store import RunStatus, SQLStore

    out = tmp_path / "out"
    out.mkdir()
    (out / "mlflow.db").write_bytes(b"half-migrated, or not a database at all" * 100)
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"), "- name: a\n",
                              experiment=f"name: damaged\nbase_dir: {out}\nrepeat: 1\n")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warning: MLflow mirror off for this session" in done.stderr and "Traceback" not in done.stderr
    assert "MLflow:" not in done.stdout  # no browse command for a mirror that was not written
    with SQLStore(f"sqlite:///{out / 'spikelab.db'}", readonly=True) as store:
        assert [r.status for r in store.runs(store.get_experiment("damaged").id)] == [RunStatus.COMPLETED]


def test_the_tracking_lock_serialises_processes(tmp_path):
    """Two processes never hold the lock at once (MLflow's schema set-up is not safe when run twice at once)."""
    script = ("import sys, time\n"
              f"sys.path.insert(0, {str(ROOT)!r})\n"
              "from experiment.mlflow_mirror import tracking_lock\n"
              f"with tracking_lock('sqlite:///{tmp_path / 'mlflow.db'}'):\n"
              "    print('in', time.time(), flush=True)\n"
              "    time.sleep(0.5)\n"
              "    print('out', time.time(), flush=True)\n")
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    spans = []
    for process in processes:
        lines = process.communicate(timeout=60)[0].split()
        spans.append((float(lines[1]), float(lines[3])))
    spans.sort()
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans


def test_a_finished_child_holds_the_run_folders_files(mirror, client, tmp_path):
    from experiment.mlflow_mirror import run_artifacts

    folder = tmp_path / "t" / "repeat_0"
    files = ["config.yaml", "run.json", "metrics.csv", "confusion.json", "log.txt", "plots/learning_curves.png",
             "plots/recordings/raster_epoch_0.png", "recordings/epoch_0.npz", "recordings/epoch_1.npz.tmp",
             "checkpoints/best.pt", "checkpoints/last.pt"]
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    logged = {"config.yaml", "run.json", "metrics.csv", "confusion.json", "plots/learning_curves.png",
              "plots/recordings/raster_epoch_0.png", "recordings/epoch_0.npz", "checkpoints/best.pt"}
    assert {f"{where}/{path.name}".lstrip("/") for path, where in run_artifacts(folder)} == logged
    parent = ensure_parent_runs(mirror.uri, "files", {"t": {"lr": 1}})["t"]
    cb = MLflowCallback(mirror.uri, "files", parent, "t/repeat_0", {"lr": 1})
    fit(cb, new_state(0, folder))
    found = set()
    pending = [None]
    while pending:
        for entry in client.list_artifacts(cb.run_id, pending.pop()):
            (pending.append(entry.path) if entry.is_dir else found.add(entry.path))
    assert found == logged  # not last.pt, log.txt or a half-written .tmp
    local = client.download_artifacts(cb.run_id, "recordings/epoch_0.npz", str(tmp_path / "dl"))
    assert Path(local).read_text() == "recordings/epoch_0.npz"
