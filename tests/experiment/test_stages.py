"""Staged trials (settings.stages, experiment.stages): a classifier stage that starts from, and
freezes, the encoder an earlier stage trained; stages are runs like any other, recorded with the
run they start from, ordered by it, resumed on their own."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from testkit import TINY_CONFIG, make_pipeline, write_experiment

import main
from experiment.plan import config_hash
from experiment.stages import link_local
from network.network import Model, NetworkOutput
from network.readouts import ReadoutOutput
from settings.errors import ConfigError
from settings.resolve import resolve_experiment

ROOT = Path(__file__).resolve().parents[2]
TWO_LAYERS = [{"type": "Dense", "out_features": 16, "kernel": {"type": "LIFKernel", "tau_m": 10.0}},
              {"type": "Dense", "out_features": 12, "kernel": {"type": "LIFKernel", "tau_m": 10.0}}]


def staged(name: str = "st", repeat: int = 2, encoder: dict | None = None, classifier: dict | None = None,
           **trial) -> list[dict]:
    """A trial whose encoder stage trains a one-layer Network and whose classifier stage stacks a
    second layer on the frozen first one (``layers.0``: the "encoder")."""
    stages = [{"name": "encoder", **({"settings": encoder} if encoder else {})},
              {"name": "classifier", "init_from": "encoder", "freeze": ["layers.0"],
               "settings": {"model": {"layers": TWO_LAYERS}, **(classifier or {})}}]
    return [{"name": name, "repeat": repeat, "stages": stages, **trial}]


def experiment(tmp_path: Path, trials: list[dict], name: str = "stexp", config: str = TINY_CONFIG) -> tuple[Path, str]:
    folder = write_experiment(tmp_path / name, config, yaml.safe_dump(trials, sort_keys=False),
                              experiment=f"name: {name}\nbase_dir: {tmp_path / 'out'}\nmlflow: {{enabled: false}}\n")
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchall()


def checkpoint_model(run_dir: str, name: str) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "checkpoints" / f"{name}.pt", weights_only=True)["model"]


def status_json(db: str, capsys) -> dict:
    capsys.readouterr()
    assert main.main(["status", "stexp", "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --- resolution and identity -------------------------------------------------------------------
def test_a_staged_trial_resolves_into_one_trial_per_stage(tmp_path):
    folder, _ = experiment(tmp_path, staged())
    trials = link_local(resolve_experiment(folder).trials)
    assert [t.name for t in trials] == ["st.encoder", "st.classifier"]
    encoder, classifier = (t.config for t in trials)
    assert encoder["stage"] == {"name": "encoder", "trial": "st", "init_from": None}
    assert classifier["stage"]["init_from"] == {"stage": "encoder", "trial": "st.encoder", "modules": ["layers.0"],
                                                "checkpoint": "best", "config_hash": config_hash(encoder)}
    assert classifier["freeze"] == ["layers.0"] and encoder["freeze"] == []
    assert len(encoder["model"]["layers"]) == 1 and len(classifier["model"]["layers"]) == 2


def test_the_encoder_config_is_part_of_the_classifier_identity(tmp_path):
    """Only the encoder stage's settings differ; the classifier's own settings are the same, yet
    its config hash changes with the encoder's, so it gets other runs."""
    hashes = []
    for lr in (0.01, 0.02):
        folder, _ = experiment(tmp_path / str(lr), staged(encoder={"optimizer": {"lr": lr}},
                                                          classifier={"optimizer": {"lr": 0.01}}))
        hashes.append([config_hash(t.config) for t in link_local(resolve_experiment(folder).trials)])
    assert hashes[0][0] != hashes[1][0] and hashes[0][1] != hashes[1][1]


def test_a_changed_encoder_stage_is_refused_as_a_changed_classifier_too(tmp_path, capsys):
    folder, db = experiment(tmp_path, staged(repeat=1, encoder={"epochs": 1}, classifier={"epochs": 1}))
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    (folder / "trials.yaml").write_text(yaml.safe_dump(staged(repeat=1, encoder={"epochs": 1, "batch_size": 32},
                                                              classifier={"epochs": 1})))
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trial 'st.encoder' changed" in err and "trial 'st.classifier' changed" in err
    assert "stage.init_from.config_hash" in err


def test_every_point_of_a_sweep_gets_its_stages(tmp_path):
    folder, _ = experiment(tmp_path, staged(sweep={"optimizer.lr": [0.01, 0.02]}))
    trials = link_local(resolve_experiment(folder).trials)
    assert [(t.name, t.group) for t in trials] == [
        ("st-lr=0.01.encoder", "st"), ("st-lr=0.01.classifier", "st"),
        ("st-lr=0.02.encoder", "st"), ("st-lr=0.02.classifier", "st")]
    by_name = {t.name: t for t in trials}
    for lr in ("0.01", "0.02"):
        classifier = by_name[f"st-lr={lr}.classifier"].config
        assert classifier["optimizer"]["lr"] == float(lr)
        assert classifier["stage"]["init_from"]["config_hash"] == config_hash(by_name[f"st-lr={lr}.encoder"].config)


def test_the_store_records_stages_and_fails_a_blocked_run_without_an_attempt(store_url):
    from experiment.store import NewRun, RunStatus, SQLStore, environment_capsule

    with SQLStore.create(store_url) as store:
        exp = store.open_experiment("e", "", 0, "here", {}, environment_capsule())
        upstream_trial = store.upsert_trial(exp.id, "t.encoder", {"a": 1}, "h1")
        downstream_trial = store.upsert_trial(exp.id, "t.classifier", {"a": 2}, "h2")
        (up,) = store.ensure_runs(exp.id, [NewRun(upstream_trial.id, "h1", 0, 5, "o/1", "encoder")])
        (down,) = store.ensure_runs(exp.id, [NewRun(downstream_trial.id, "h2", 0, 5, "o/2", "classifier", up.id)])
        assert (up.stage, up.upstream_run_id, down.stage, down.upstream_run_id) == ("encoder", None, "classifier", up.id)
        store.fail_blocked(down.id, "not started: upstream FAILED")
        blocked = store.run(down.id)
        assert (blocked.status, blocked.attempts, blocked.error_type, blocked.error_message) == (
            RunStatus.FAILED, 0, "UpstreamNotCompleted", "not started: upstream FAILED")
        assert store.attempts(down.id) == []
        attempt = store.claim_run(up.id, "host", 1)
        store.finish_run(up.id, attempt.id, RunStatus.COMPLETED, summary={})
        store.fail_blocked(up.id, "must not apply to a completed run")
        assert store.run(up.id).status == RunStatus.COMPLETED and store.run(up.id).error_message is None


def test_extend_refuses_staged_trials_in_one_line(tmp_path, capsys):
    folder, db = experiment(tmp_path, staged(repeat=1, encoder={"epochs": 1}, classifier={"epochs": 1}))
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress", "--extend", "--set", "epochs=2"]) == 2
    assert "--extend: does not continue staged trials ('st': a longer upstream stage" in capsys.readouterr().err
    assert rows(db, "SELECT DISTINCT status, extended_epochs FROM run") == [("COMPLETED", None)]


# --- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stages, message", [
    ([{"name": "a"}, {"name": "b", "init_from": "nope", "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[1].init_from names no earlier stage, got 'nope'; a stage starts from one listed "
     "before it (earlier: 'a')"),
    ([{"name": "a", "init_from": "b", "freeze": ["layers.0"]}, {"name": "b", "init_from": "a", "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[0].init_from names a later stage, got 'b'"),
    ([{"name": "a", "init_from": {"stage": "a"}, "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[0].init_from.stage names the stage itself, got 'a'"),
    ([{"name": "a"}, {"name": "b", "init_from": "a", "freeze": ["encoder"]}],
     "trials.yaml (st): stages[1].freeze[0] names no submodule of the model, got 'encoder'; its submodules: layers, "
     "layers.0, readout, readout.kernel"),
    ([{"name": "a"}, {"name": "b", "init_from": {"stage": "a", "modules": ["layers.1"]}}],
     "trials.yaml (st): stages[1].init_from.modules[0] names no submodule of the model, got 'layers.1'"),
    ([{"name": "a"}, {"name": "b", "init_from": "a"}],
     "trials.yaml (st): stages[1].init_from.modules is missing: say which submodules to copy"),
    ([{"name": "a", "settings": {"model.layers[0].out_features": 8}}, {"name": "b", "init_from": "a",
                                                                       "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[1].freeze[0] 'layers.0' differs between stage 'a' and this stage's model (first at "
     "'layers.0.weight')"),
    ([{"name": "a"}, {"name": "a"}], "trials.yaml (st): stages[1].name 'a' is used twice"),
    ([{"name": "a.b"}], "trials.yaml (st): stages[0].name must not hold '.', got 'a.b'"),
    ([{"name": "a"}, {"name": "b", "init_from": {"stage": "a", "repeat": 1}, "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[1].init_from.repeat only goes with experiment:"),
    ([{"name": "b", "init_from": {"experiment": "other"}, "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[0].init_from.trial is missing: which trial of experiment 'other'"),
    ([{"name": "a"}, {"name": "b", "init_from": {"stage": "a", "checkpoint": "first"}, "freeze": ["layers.0"]}],
     "trials.yaml (st): stages[1].init_from.checkpoint must be one of 'best', 'last', got 'first'"),
])
def test_bad_stages_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, stages, message):
    folder, db = experiment(tmp_path, [{"name": "st", "stages": stages}])
    with pytest.raises(ConfigError) as caught:
        resolve_experiment(folder)
    assert len(caught.value.issues) == 1
    assert str(caught.value.issues[0]).startswith(message)
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_stage_trial_name_taken_by_another_trial_is_refused(tmp_path):
    folder, _ = experiment(tmp_path, staged() + [{"name": "st.classifier"}])
    with pytest.raises(ConfigError, match=r"trials.yaml: name 'st.classifier' is produced twice \(also by st\)"):
        resolve_experiment(folder)


def test_a_reference_to_an_experiment_the_database_lacks_is_refused_before_anything_is_written(tmp_path, capsys):
    trials = [{"name": "st", "stages": [{"name": "classifier", "freeze": ["layers.0"],
                                         "init_from": {"experiment": "pretrain", "trial": "enc"}}]}]
    folder, db = experiment(tmp_path, trials)
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    assert "init_from.experiment names experiment 'pretrain', which this database does not hold" in \
        capsys.readouterr().err
    assert not (tmp_path / "out" / "stexp").exists()


# --- freezing ----------------------------------------------------------------------------------------
class EncoderClassifier(Model):
    """A model with named parts: an ``encoder`` (Linear, BatchNorm, Dropout) and a ``classifier``."""

    def __init__(self, input_size: int, hidden: int = 8, classes: int = 10):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(input_size, hidden), torch.nn.BatchNorm1d(hidden),
                                           torch.nn.ReLU(), torch.nn.Dropout(0.5))
        self.classifier = torch.nn.Linear(hidden, classes)
        self.out_features = classes
        self.encoder_modes: list[bool] = []  # BatchNorm's ``training`` at every training forward
        self.encoder[1].register_forward_hook(lambda m, i, o: self.encoder_modes.append(m.training)
                                              if self.training else None)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        scores = self.classifier(self.encoder(x.mean(0)))
        return NetworkOutput(scores, [], ReadoutOutput(scores, None, None))


def test_a_frozen_encoder_is_bitwise_unchanged_and_trains_in_eval_mode():
    pipe = make_pipeline(TINY_CONFIG.replace("epochs: 2", "epochs: 3"), freeze=["encoder"])
    models: list[EncoderClassifier] = []
    pipe.model_factory = lambda input_size: models.append(EncoderClassifier(input_size)) or models[-1]
    seen: dict[str, dict[str, torch.Tensor]] = {}

    from pipeline.callbacks.base import Callback

    class Before(Callback):
        def on_fit_start(self, state):
            seen["encoder"] = {k: v.clone() for k, v in state.model.encoder.state_dict().items()}
            seen["classifier"] = {k: v.clone() for k, v in state.model.classifier.state_dict().items()}

    pipe.fit(seed=3, callbacks=[Before()])
    model = models[-1]
    after = model.encoder.state_dict()
    assert set(after) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "1.num_batches_tracked"}
    assert all(torch.equal(seen["encoder"][k], after[k]) for k in after)  # parameters and BatchNorm statistics
    assert int(after["1.num_batches_tracked"]) == 0
    assert model.encoder_modes and not any(model.encoder_modes)  # never in training mode
    assert not all(torch.equal(seen["classifier"][k], v) for k, v in model.classifier.state_dict().items())
    assert all(not p.requires_grad for p in model.encoder.parameters())


def test_copy_modules_copies_exactly_and_refuses_what_does_not_fit():
    from pipeline.callbacks.init_from import InitFromError, copy_modules

    source, target = EncoderClassifier(5), EncoderClassifier(5)
    source.encoder[1].running_mean.fill_(0.25)
    assert copy_modules(target, source.state_dict(), ["encoder"]) == 7
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items() if k.startswith("encoder"))
    assert not torch.equal(source.classifier.weight, target.classifier.weight)
    with pytest.raises(InitFromError, match="has no submodule 'stem'"):
        copy_modules(target, source.state_dict(), ["stem"])
    with pytest.raises(InitFromError, match=r"encoder.0.weight has shape \(8, 6\) in the checkpoint but \(8, 5\)"):
        copy_modules(target, EncoderClassifier(6).state_dict(), ["encoder"])


# --- runs --------------------------------------------------------------------------------------------
def test_stages_run_in_order_and_record_the_run_they_start_from(tmp_path, capsys):
    folder, db = experiment(tmp_path, staged())
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    runs = {(trial, repeat): (rid, up, out) for rid, trial, repeat, up, out in rows(
        db, "SELECT r.id, t.name, r.repeat, r.upstream_run_id, r.output_dir FROM run r JOIN trial t ON t.id = r.trial_id")}
    for k in (0, 1):
        encoder_id, _, encoder_dir = runs[("st.encoder", k)]
        _, upstream, classifier_dir = runs[("st.classifier", k)]
        assert runs[("st.encoder", k)][1] is None and upstream == encoder_id
        mine, theirs = checkpoint_model(classifier_dir, "last"), checkpoint_model(encoder_dir, "best")
        assert all(torch.equal(mine[key], theirs[key]) for key in theirs if key.startswith("layers.0."))
        assert mine["layers.1.weight"].shape == (12, 16)
        assert f"starts from run {encoder_id} (st.encoder/repeat_{k})" in (Path(classifier_dir) / "log.txt").read_text()
    (first_classifier_start,), = rows(db, "SELECT MIN(a.started_at) FROM attempt a JOIN run r ON r.id = a.run_id "
                                          "WHERE r.stage = 'classifier'")
    (last_encoder_end,), = rows(db, "SELECT MAX(a.finished_at) FROM attempt a JOIN run r ON r.id = a.run_id "
                                    "WHERE r.stage = 'encoder'")
    assert last_encoder_end <= first_classifier_start
    document = status_json(db, capsys)
    assert [(s["trial"], s["repeat"], s["upstream_run_id"], s["upstream"]) for s in document["stages"]
            if s["stage"] == "classifier"] == [("st.classifier", k, runs[("st.encoder", k)][0],
                                                f"st.encoder/repeat_{k}") for k in (0, 1)]


def test_a_failed_upstream_fails_its_downstream_with_the_reason_and_the_rest_goes_on(tmp_path, capsys, monkeypatch):
    import experiment.runner as runner

    real = runner.execute_run

    def encoder_0_fails(config, seed, output_dir, info, *args, **kwargs):
        if info.get("stage") == "encoder" and info["repeat"] == 0:
            raise RuntimeError("encoder broke")
        return real(config, seed, output_dir, info, *args, **kwargs)

    folder, db = experiment(tmp_path, staged())
    monkeypatch.setattr(runner, "execute_run", encoder_0_fails)
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    found = {(t, k): (s, a, m) for t, k, s, a, m in rows(
        db, "SELECT t.name, r.repeat, r.status, r.attempts, r.error_message FROM run r JOIN trial t ON t.id = r.trial_id")}
    assert found[("st.encoder", 0)][:2] == ("FAILED", 1)
    status, attempts, message = found[("st.classifier", 0)]
    assert (status, attempts) == ("FAILED", 0)
    assert message.startswith("not started: its upstream stage run 1 (st.encoder/repeat_0) is FAILED: RuntimeError: "
                              "encoder broke")
    assert found[("st.encoder", 1)][0] == found[("st.classifier", 1)][0] == "COMPLETED"
    monkeypatch.setattr(runner, "execute_run", real)
    assert main.main(["run", str(folder), "--no-progress"]) == 0  # both retried, in order
    assert {s for (s,) in rows(db, "SELECT status FROM run")} == {"COMPLETED"}


def test_a_stage_starts_from_a_run_of_another_experiment(tmp_path, capsys):
    pretrain, db = experiment(tmp_path, [{"name": "enc", "repeat": 2}], name="pretrain")
    assert main.main(["run", str(pretrain), "--no-progress"]) == 0
    trials = [{"name": "st", "repeat": 2, "stages": [
        {"name": "classifier", "freeze": ["layers.0"], "settings": {"model": {"layers": TWO_LAYERS}},
         "init_from": {"experiment": "pretrain", "trial": "enc"}},
        {"name": "pinned", "freeze": ["layers.0"], "init_from": {"experiment": "pretrain", "trial": "enc",
                                                                  "repeat": 1, "checkpoint": "last"}}]}]
    folder, _ = experiment(tmp_path, trials)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    encoder = {k: (rid, out) for rid, k, out in rows(db, "SELECT r.id, r.repeat, r.output_dir FROM run r JOIN trial t "
                                                         "ON t.id = r.trial_id WHERE t.name = 'enc'")}
    used = {(stage, k): (up, out) for stage, k, up, out in rows(db, "SELECT stage, repeat, upstream_run_id, output_dir "
                                                                    "FROM run WHERE stage IS NOT NULL")}
    assert [used[("classifier", k)][0] for k in (0, 1)] == [encoder[0][0], encoder[1][0]]
    assert [used[("pinned", k)][0] for k in (0, 1)] == [encoder[1][0]] * 2
    mine, theirs = checkpoint_model(used[("pinned", 0)][1], "last"), checkpoint_model(encoder[1][1], "last")
    assert torch.equal(mine["layers.0.weight"], theirs["layers.0.weight"])
    trial_config = json.loads(rows(db, "SELECT config FROM trial WHERE name = 'st.classifier'")[0][0])
    assert trial_config["stage"]["init_from"]["version"] == 1 and len(trial_config["stage"]["init_from"]["config_hash"]) == 64


@pytest.mark.slow
def test_loky_workers_start_a_stage_only_after_its_upstream_completed(tmp_path):
    folder, db = experiment(tmp_path, staged(repeat=2, classifier={"epochs": 1}))
    assert main.main(["run", str(folder), "--no-progress", "--n-jobs", "2"]) == 0
    pairs = rows(db, "SELECT down.started_at, up.finished_at FROM attempt down JOIN run r ON r.id = down.run_id "
                     "JOIN attempt up ON up.run_id = r.upstream_run_id")
    assert len(pairs) == 2 and all(started >= finished for started, finished in pairs)
    assert len({pid for (pid,) in rows(db, "SELECT pid FROM attempt")}) > 1


@pytest.mark.slow
def test_a_kill_9_in_the_second_stage_resumes_the_second_stage_only(tmp_path):
    """The whole ``run`` process is killed while the classifier stage trains; the same command again
    leaves the encoder run as it was and resumes the classifier run from its last checkpoint, and
    the classifier's recorded upstream is the encoder run whose weights it holds."""
    folder, db = experiment(tmp_path, staged(repeat=1, classifier={"epochs": 40}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed_at = time.time() + 300, None
    try:
        while killed_at is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                found = rows(db, "SELECT MAX(m.epoch) FROM run r JOIN metric m ON m.run_id = r.id "
                                 "WHERE r.stage = 'classifier' AND r.status = 'RUNNING'")
            except sqlite3.OperationalError:
                continue
            if found and found[0][0] is not None and found[0][0] >= 3:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = found[0][0]
    finally:
        output = proc.communicate(timeout=60)[0]
    assert killed_at is not None, output
    assert rows(db, "SELECT status FROM run WHERE stage = 'classifier'") == [("RUNNING",)]
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (encoder_id, encoder_dir, encoder_attempts), = rows(db, "SELECT id, output_dir, attempts FROM run "
                                                            "WHERE stage = 'encoder'")
    (upstream, classifier_dir, classifier_attempts), = rows(db, "SELECT upstream_run_id, output_dir, attempts FROM run "
                                                                "WHERE stage = 'classifier'")
    assert encoder_attempts == 1 and classifier_attempts == 2
    assert [r for (r,) in rows(db, f"SELECT exit_reason FROM attempt WHERE run_id = {encoder_id}")] == ["COMPLETED"]
    assert [r for (r,) in rows(db, "SELECT a.exit_reason FROM attempt a JOIN run r ON r.id = a.run_id "
                                   "WHERE r.stage = 'classifier' ORDER BY a.number")] == ["STALE", "COMPLETED"]
    log = (Path(classifier_dir) / "log.txt").read_text()
    assert "resuming from last.pt" in log and log.count(f"starts from run {encoder_id} (st.encoder/repeat_0)") == 1
    assert upstream == encoder_id
    mine, theirs = checkpoint_model(classifier_dir, "last"), checkpoint_model(encoder_dir, "best")
    assert all(torch.equal(mine[key], theirs[key]) for key in theirs if key.startswith("layers.0."))
    epochs = [e for (e,) in rows(db, "SELECT DISTINCT m.epoch FROM metric m JOIN run r ON r.id = m.run_id "
                                     "WHERE r.stage = 'classifier' ORDER BY m.epoch")]
    assert epochs == list(range(41))


@pytest.mark.slow
def test_stages_nest_under_their_trial_in_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    folder, db = experiment(tmp_path, staged(repeat=1, encoder={"epochs": 1}, classifier={"epochs": 1}))
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    (folder / "experiment.yaml").write_text(f"name: stexp\nbase_dir: {tmp_path / 'out'}\nmlflow: {{enabled: true, "
                                            f"tracking_uri: '{uri}'}}\nrun_plots: false\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("stexp").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    group = by_name["st"]
    assert group.data.tags["spikelab.kind"] == "staged_trial" and group.info.status == "FINISHED"
    for stage in ("encoder", "classifier"):
        parent = by_name[f"st.{stage}"]
        assert parent.data.tags["mlflow.parentRunId"] == group.info.run_id
        child = by_name[f"st.{stage}/repeat_0"]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["spikelab.stage"] == stage
    (encoder_id,), = rows(db, "SELECT id FROM run WHERE stage = 'encoder'")
    assert by_name["st.classifier/repeat_0"].data.tags["spikelab.upstream_run_id"] == str(encoder_id)
