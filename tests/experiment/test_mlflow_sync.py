"""The MLflow mirror of a real ``run`` agrees with the experiment database: artifacts, parent
means and durations, config hashes, the description; ``mlflow-sync`` rebuilds it from the
database (idempotent, also after the mirror was deleted), checked through the Python client and
through the REST API of a started ``mlflow server``. Slow: each starts Python processes that
import mlflow (``run``, ``mlflow-sync``, the server), 20-70 s each on a loaded 2-core machine."""
from __future__ import annotations

import math
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import time

import pytest

from experiment.store import SQLStore
from testkit import TINY_CONFIG, write_experiment

ROOT = Path(__file__).resolve().parents[2]
NAME = "mirrored"
DESCRIPTION = "two trials of a tiny LIF network, mirrored to MLflow"
CONFIG = TINY_CONFIG.replace("epochs: 2", "epochs: 1") + "callbacks:\n  - {type: SpikeRecorder, samples: 2}\n"
TRIALS = "- name: small\n- name: large\n  settings: {optimizer.lr: 0.05}\n"
# what every COMPLETED run's child holds among its artifacts
ARTIFACTS = {"config.yaml", "run.json", "metrics.csv", "confusion.json", "plots/learning_curves.png",
             "plots/confusion_matrix.png", "checkpoints/best.pt", "recordings/epoch_0.npz", "recordings/epoch_1.npz",
             "plots/recordings/raster_epoch_1.png", "plots/recordings/traces_epoch_1.png"}


@dataclass
class Recorded:
    out: Path
    db: str
    uri: str


def main(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    """``run`` of 2 trials x 2 repeats x 1 epoch (20 steps), mirrored to MLflow as it trains."""
    folder = tmp_path_factory.mktemp("mirrored")
    out = folder / "out"
    exp = write_experiment(folder / "exp", CONFIG, TRIALS, env="T: 20\n",
                           experiment=f"name: {NAME}\ndesc: {DESCRIPTION}\nbase_dir: {out}\nrepeat: 2\n")
    main("run", str(exp), "--no-progress")
    return Recorded(out, f"sqlite:///{out / 'spikelab.db'}", f"sqlite:///{out / 'mlflow.db'}")


def database(db: str) -> dict:
    """What the mirror must show, read from the experiment database."""
    with SQLStore(db, readonly=True) as store:
        experiment = store.get_experiment(NAME)
        trials = {t.name: t for t in store.trials(experiment.id)}
        runs = store.runs(experiment.id)
        summaries = defaultdict(dict)
        for run_id, key, value in store.summaries(experiment.id):
            summaries[run_id][key] = value
        metrics = store.metrics(experiment.id)
        attempts = {run.id: store.attempts(run.id) for run in runs}
    return {"trials": trials, "runs": runs, "summaries": summaries, "metrics": metrics, "attempts": attempts}


def ms(moment) -> int:
    from experiment.mlflow_sync import _ms

    return _ms(moment)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for entry in client.list_artifacts(run_id, path):
        found |= artifact_files(client, run_id, entry.path) if entry.is_dir else {entry.path}
    return found


def check_mirror(uri: str, db: dict, exact_times: bool) -> None:
    """The mirror at ``uri`` agrees with the database ``db``: one parent per trial with the
    database's config hash and the means of its repeats, one child per run with its metrics,
    summary, status and files. ``exact_times``: the children start and end when the database says."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(NAME)
    assert experiment.tags["mlflow.note.content"] == DESCRIPTION
    parents = {p.info.run_name: p for p in client.search_runs([experiment.experiment_id],
                                                                "tags.`spikelab.kind` = 'trial'")}
    assert sorted(parents) == sorted(db["trials"])
    children = client.search_runs([experiment.experiment_id], "tags.`spikelab.kind` = 'repeat'")
    assert sorted(int(c.data.tags["spikelab.run_id"]) for c in children) == sorted(r.id for r in db["runs"])
    by_run = {int(c.data.tags["spikelab.run_id"]): c for c in children}
    for name, parent in parents.items():
        trial = db["trials"][name]
        assert parent.data.tags["spikelab.config_hash"] == trial.config_hash
        assert parent.info.status == "FINISHED" and parent.data.tags["spikelab.repeats"] == "2 of 2 completed"
        runs = [r for r in db["runs"] if r.trial_name == name]
        for key in ("final_test_acc", "best_val_acc", "final_train_loss"):
            expected = mean([db["summaries"][r.id][key] for r in runs])
            assert parent.data.metrics[f"summary.{key}"] == pytest.approx(expected)
        history = client.get_metric_history(parent.info.run_id, "val_acc")  # the mean learning curve
        for point in history:
            ids = {x.id for x in runs}
            assert point.value == pytest.approx(mean([v for r, k, e, v in db["metrics"]
                                                      if k == "val_acc" and e == point.step and r in ids]))
        assert sorted(p.step for p in history) == [0, 1]
        assert parent.info.end_time == max(ms(r.finished_at) for r in runs)  # the trial lasts until its last repeat
        first = min(ms(db["attempts"][r.id][0].started_at) for r in runs)
        assert abs(parent.info.start_time - first) <= 1000  # ... and starts with its first
        for run in runs:
            child = by_run[run.id]
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.data.tags["spikelab.config_hash"] == run.config_hash == trial.config_hash
            assert child.info.status == "FINISHED"
            if exact_times:
                assert child.info.start_time == ms(db["attempts"][run.id][0].started_at)
                assert child.info.end_time == ms(run.finished_at)
            for key, value in db["summaries"][run.id].items():
                logged = child.data.metrics[f"summary.{key}"]
                assert logged == value or (math.isnan(logged) and math.isnan(value))
            rows = [(e, v) for r, k, e, v in db["metrics"] if r == run.id and k == "test_acc"]
            assert sorted((m.step, m.value) for m in client.get_metric_history(child.info.run_id, "test_acc")) == rows
            assert ARTIFACTS <= artifact_files(client, child.info.run_id)
            folder = Path(run.output_dir)
            local = Path(client.download_artifacts(child.info.run_id, "config.yaml", str(folder.parent / "dl")))
            assert local.read_text() == (folder / "config.yaml").read_text()


@pytest.mark.slow
def test_the_mirror_of_a_run_agrees_with_the_database(recorded):
    assert any((recorded.out / "mlartifacts").rglob("best.pt"))  # mlartifacts/ is not empty
    check_mirror(recorded.uri, database(recorded.db), exact_times=False)


@pytest.mark.slow
def test_mlflow_sync_rebuilds_a_deleted_mirror_and_is_idempotent(recorded, tmp_path):
    uri = f"sqlite:///{tmp_path / 'rebuilt.db'}"  # an empty tracking store: the mirror deleted
    first = main("mlflow-sync", NAME, "--db", recorded.db, "--tracking-uri", uri).stdout
    assert "2 parent run(s) and 4 child run(s) created" in first
    db = database(recorded.db)
    check_mirror(uri, db, exact_times=True)
    again = main("mlflow-sync", NAME, "--db", recorded.db, "--tracking-uri", uri).stdout
    assert "already in sync: nothing written" in again

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(NAME)
    children = client.search_runs([experiment.experiment_id], "tags.`spikelab.kind` = 'repeat'")
    client.delete_run(children[0].info.run_id)  # a child lost
    stray = client.create_run(experiment.experiment_id, run_name="x", tags={"spikelab.kind": "repeat",
                                                                            "spikelab.run_id": "999"})
    repaired = main("mlflow-sync", NAME, "--db", recorded.db, "--tracking-uri", uri).stdout
    assert "1 child run(s) created" in repaired and "1 run(s) deleted" in repaired
    assert client.get_run(stray.info.run_id).info.lifecycle_stage == "deleted"
    check_mirror(uri, db, exact_times=True)


@pytest.mark.slow
def test_the_rest_api_serves_the_artifacts_parent_means_and_config_hash(recorded, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from mlflow_server import get_bytes, get_json, mlflow_server, post_json

    db = database(recorded.db)
    with mlflow_server(recorded.uri, recorded.out / "mlartifacts", recorded.out) as base:
        experiment = get_json(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=NAME)["experiment"]
        search = "/api/2.0/mlflow/runs/search"
        parents = post_json(base, search, {"experiment_ids": [experiment["experiment_id"]],
                                           "filter": "tags.`spikelab.kind` = 'trial'"})["runs"]
        assert sorted(p["info"]["run_name"] for p in parents) == sorted(db["trials"])
        for parent in parents:
            name = parent["info"]["run_name"]
            tags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
            assert tags["spikelab.config_hash"] == db["trials"][name].config_hash
            runs = [r for r in db["runs"] if r.trial_name == name]
            metrics = {m["key"]: float(m["value"]) for m in parent["data"]["metrics"]}
            assert metrics["summary.final_test_acc"] == pytest.approx(
                mean([db["summaries"][r.id]["final_test_acc"] for r in runs]))
            assert int(parent["info"]["end_time"]) - int(parent["info"]["start_time"]) >= \
                sum(r.duration_s for r in runs) * 1000 / 2  # real durations, not a container's 0 s
            kids = post_json(base, search, {"experiment_ids": [experiment["experiment_id"]],
                                            "filter": f"tags.`mlflow.parentRunId` = '{parent['info']['run_id']}'"})
            for kid in kids["runs"]:
                run_id = kid["info"]["run_id"]
                listed = get_json(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id)["files"]
                assert {"config.yaml", "checkpoints", "plots", "recordings"} <= {f["path"] for f in listed}
                recordings = get_json(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id, path="recordings")
                assert {f["path"] for f in recordings["files"]} == {"recordings/epoch_0.npz", "recordings/epoch_1.npz"}
                tags = {t["key"]: t["value"] for t in kid["data"]["tags"]}
                run = next(r for r in runs if str(r.id) == tags["spikelab.run_id"])
                config = get_bytes(base, "/get-artifact", path="config.yaml", run_uuid=run_id)
                assert config == (Path(run.output_dir) / "config.yaml").read_bytes()


# --- in-process, on a database written by hand (fast) -----------------------------------------
TRIAL_CONFIG = {"optimizer": {"lr": 0.01}, "model": {"layers": [{"kernel": {"tau_m": 10.0}}]}}
SUMMARIES = {0: {"final_val_acc": 0.5, "best_epoch": 2.0}, 1: {"final_val_acc": 0.7, "best_epoch": 1.0}}


@pytest.fixture
def handmade(tmp_path) -> tuple[SQLStore, object, dict]:
    """A database with one trial of 3 repeats: two COMPLETED (known metrics and summaries), one FAILED."""
    from experiment.store import ErrorInfo, NewRun, RunStatus

    store = SQLStore.create(f"sqlite:///{tmp_path / 'db.sqlite'}")
    experiment = store.open_experiment("handmade", "written by hand", 0, str(tmp_path), {}, {})
    trial = store.upsert_trial(experiment.id, "t", TRIAL_CONFIG, "hash-of-t")
    runs = store.ensure_runs(experiment.id, [NewRun(trial.id, "hash-of-t", k, k, str(tmp_path / f"t/repeat_{k}"))
                                             for k in range(3)])
    for repeat, run in enumerate(runs):
        attempt = store.claim_run(run.id, "host", 1)
        for epoch in range(3):
            store.log_metrics(run.id, epoch, {"val_acc": 0.1 * epoch + 0.2 * repeat, "val_loss": float("nan")})
        if repeat < 2:
            store.finish_run(run.id, attempt.id, RunStatus.COMPLETED, summary=SUMMARIES[repeat])
        else:
            store.finish_run(run.id, attempt.id, RunStatus.FAILED, error=ErrorInfo("RuntimeError", "diverged"))
    # the tests create the parent run after this: more than update_parents' 1 s tolerance after the
    # first repeat started, as a parent made before a session's runs is (on a fast machine it was not)
    time.sleep(1.2)
    yield store, store.get_experiment("handmade"), {run.repeat: store.run(run.id) for run in runs}
    store.close()


def test_update_parents_gives_a_parent_the_means_of_its_completed_repeats(handmade, tmp_path):
    from mlflow.tracking import MlflowClient

    from experiment.mlflow_mirror import ensure_parent_runs
    from experiment.mlflow_sync import _ms, update_parents

    store, experiment, runs = handmade
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parents = ensure_parent_runs(uri, "handmade", {"t": TRIAL_CONFIG}, {"t": "hash-of-t"}, "written by hand")
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(parents["t"]).info.status == "RUNNING"  # until its repeats have run
    first_parent = parents["t"]
    update_parents(store, experiment, uri, parents)
    parent = client.get_run(parents["t"])
    assert parent.data.tags["spikelab.config_hash"] == "hash-of-t"
    assert parent.data.tags["spikelab.repeats"] == "2 of 3 completed"
    assert parent.info.status == "FAILED"  # one repeat failed and none is left to run
    assert parent.info.end_time == max(_ms(r.finished_at) for r in runs.values())
    # created after its repeats ran, it was replaced by a parent that starts with the first repeat
    assert parent.info.start_time == min(_ms(store.attempts(r.id)[0].started_at) for r in runs.values())
    assert client.get_run(first_parent).info.lifecycle_stage == "deleted"
    assert parent.data.metrics["summary.final_val_acc"] == pytest.approx(0.6)  # (0.5 + 0.7) / 2
    assert parent.data.metrics["summary.best_epoch"] == pytest.approx(1.5)
    curve = sorted((m.step, m.value) for m in client.get_metric_history(parents["t"], "val_acc"))
    assert curve == [(0, pytest.approx(0.1)), (1, pytest.approx(0.2)), (2, pytest.approx(0.3))]  # mean of 2 repeats
    assert client.get_metric_history(parents["t"], "val_loss") == []  # NaN everywhere: no mean to draw
    assert [m.step for m in client.get_metric_history(parents["t"], "summary.final_val_acc")] == [2]  # n = 2
    experiment_tags = client.get_experiment_by_name("handmade").tags
    assert experiment_tags["mlflow.note.content"] == "written by hand"
    assert experiment_tags["mlflow.experimentKind"] == "custom_model_development"


def test_sync_experiment_mirrors_every_run_and_then_writes_nothing(handmade, tmp_path):
    from mlflow.tracking import MlflowClient

    from experiment.mlflow_sync import _ms, sync_experiment

    store, experiment, runs = handmade
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    counts = sync_experiment(store, experiment, uri)
    assert (counts.parents_created, counts.children_created) == (1, 3)
    assert counts.missing_folders == [runs[0].output_dir, runs[1].output_dir]  # no run folders: nothing to upload
    client = MlflowClient(tracking_uri=uri)
    kids = {int(c.data.tags["spikelab.run_id"]): c
            for c in client.search_runs([client.get_experiment_by_name("handmade").experiment_id],
                                        "tags.`spikelab.kind` = 'repeat'")}
    for repeat, run in runs.items():
        kid = kids[run.id]
        assert kid.info.status == ("FINISHED" if repeat < 2 else "FAILED")
        started = store.attempts(run.id)[0].started_at
        assert (kid.info.start_time, kid.info.end_time) == (_ms(started), _ms(run.finished_at))
        assert sorted((m.step, m.value) for m in client.get_metric_history(kid.info.run_id, "val_acc")) == \
            [(e, pytest.approx(0.1 * e + 0.2 * repeat)) for e in range(3)]
        assert all(math.isnan(m.value) for m in client.get_metric_history(kid.info.run_id, "val_loss"))
        assert kid.data.params["model.layers.0.kernel.tau_m"] == "10.0"
    assert kids[runs[2].id].data.tags["spikelab.error"] == "RuntimeError: diverged"
    assert kids[runs[1].id].data.metrics["summary.final_val_acc"] == pytest.approx(0.7)
    again = sync_experiment(store, experiment, uri)
    assert not again.wrote
