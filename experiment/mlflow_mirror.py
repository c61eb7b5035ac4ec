"""MLflow mirror of the experiment database: experiment -> trial (parent run) -> repeat (child run).

The database stays the record; MLflow is a view of it for browsing. The parent process calls
:func:`ensure_parent_runs` before any worker starts (so it alone creates the MLflow schema, the
experiment and one parent run per trial); each worker then installs :class:`MLflowCallback`,
which keeps one child run per repeat.

Choices (MLflow 3):

- **Names.** MLflow accepts only alphanumerics, ``_ - . / :`` and spaces in param, metric and
  tag keys, so a config path ``model.layers[0].kernel.tau_m`` becomes the param
  ``model.layers.0.kernel.tau_m`` (:func:`mlflow_key`). Metric names (``val_acc/label_3``) pass
  unchanged.
- **NaN and inf.** Metric values are logged as they are. MLflow's SQL store keeps NaN
  explicitly (an ``is_nan`` flag; it reads back as NaN, and as the string ``"NaN"`` through the
  REST API), but it clips +-inf to +-1.797e308. The database keeps both exactly.
- **Summary.** Numeric summary values (``final_val_acc``, ``best_epoch``, ...) are logged as
  metrics ``summary.<key>`` at the run's last epoch, so they are sortable columns in the MLflow
  run table; non-numeric ones become tags ``summary.<key>``.
- **Parents** carry the trial: its config as params, the database's config hash as the tag
  ``spikelab.config_hash``, and, once its repeats have run, the means over its COMPLETED
  repeats (``summary.<key>`` as the children have them, and each epoch's metrics), with the span
  of its repeats as start and end (experiment.mlflow_sync). They stay RUNNING until then; their
  children carry the state of each repeat (RUNNING, FINISHED, FAILED, or KILLED for an interrupt).
- **Artifacts.** At the end of a fit the child run gets the run folder's resolved config,
  run.json, metrics.csv, confusion.json, plots/ (with the recordings' plots), recordings/ and
  checkpoints/best.pt (:func:`run_artifacts`), so ``mlartifacts/`` holds every run's files.
- **Resume.** A resumed fit reuses its child run and logs only the epochs that child does not
  hold yet, so every step appears once. A fresh start of a repeat deletes (MLflow's soft delete)
  the child runs an earlier attempt left under the same parent and name, as the database forgets
  the metrics of a partial attempt.
- **Failures.** A tracking-store error (locked SQLite file, server down) is retried a few times,
  then logged as a warning, and the mirror switches itself off for that run: training goes on
  and the database still records everything.

mlflow is imported inside functions only: importing this module never imports it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import numbers
import re
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.paths import flatten

log = logging.getLogger(__name__)

# MLflow's limits (mlflow.utils.validation), copied so that importing this module never imports mlflow
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_ENTITY_KEY_LENGTH = 250

KIND_TAG = "spikelab.kind"  # "trial" on parent runs, "repeat" on child runs
TRIAL_TAG = "spikelab.trial"
CONFIG_HASH_TAG = "spikelab.config_hash"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests a child under its parent
RUN_ID_TAG = "spikelab.run_id"  # a child's run id in the experiment database
DESCRIPTION_TAG = "mlflow.note.content"  # MLflow's own tag: the experiment's description
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"  # MLflow 3 UI's kind

# MLflow error codes worth another try; anything else (a bad name, a missing run) fails at once
TRANSIENT_ERRORS = frozenset({"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED",
                              "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"})

_INDEX = re.compile(r"\[(-?\d+)\]")
_NOT_ALLOWED = re.compile(r"[^/\w.\- :]")


def mlflow_key(key: str) -> str:
    """A param, metric or tag key MLflow accepts: ``a.b[0].c`` -> ``a.b.0.c``, other characters -> ``_``."""
    key = _NOT_ALLOWED.sub("_", _INDEX.sub(r".\1", str(key)))
    key = re.sub(r"/+", "/", key).strip("/")
    return key[:MAX_ENTITY_KEY_LENGTH] or "_"


def mlflow_params(config: dict[str, Any]) -> dict[str, str]:
    """A nested or already flat config as MLflow params: sanitised dot-path keys, string values
    cut to MLflow's length limit. When two paths map to the same key, the first one wins."""
    params: dict[str, str] = {}
    for key, value in flatten(config).items():
        params.setdefault(mlflow_key(key), str(value)[:MAX_PARAM_VAL_LENGTH])
    return params


def default_artifact_location(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite tracking file (absolute path); None (MLflow's default) otherwise."""
    path = _sqlite_path(tracking_uri)
    return None if path is None else str(path.parent / "mlartifacts")


def mlflow_ui_command(tracking_uri: str, artifact_root: str | None = None) -> str:
    """The shell command that browses the mirror: ``mlflow ui --backend-store-uri <uri>
    [--default-artifact-root <dir>]``. A relative SQLite path is made absolute, so the command
    works from any folder. The UI then listens on http://127.0.0.1:5000 (``--port`` changes it);
    MLflow 3's host check accepts localhost and 127.0.0.1 without further flags."""
    path = _sqlite_path(tracking_uri)
    uri = tracking_uri if path is None else f"sqlite:///{path}{_query(tracking_uri)}"
    args = ["mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root or default_artifact_location(tracking_uri)
    if root:
        args += ["--default-artifact-root", root]
    return shlex.join(args)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """The id of the MLflow experiment ``name``, created (artifacts in ``artifact_location``,
    default :func:`default_artifact_location`) or restored from MLflow's trash when needed."""
    return _ensure_experiment(_client(tracking_uri), tracking_uri, name, artifact_location)


@contextmanager
def tracking_lock(tracking_uri: str) -> Iterator[None]:
    """Holds an exclusive lock on ``<mlflow.db>.lock`` beside a SQLite tracking file, so that the
    processes starting at once (several ``run`` commands, their workers) create and migrate
    MLflow's schema one after the other: MLflow's own set-up is not safe against a concurrent
    one and leaves a half-migrated file. Other tracking URIs (a server) need no lock. The lock
    is a separate file: locking the database file itself would interfere with SQLite's locks."""
    path = _sqlite_path(tracking_uri)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_parent_runs(tracking_uri: str, experiment_name: str, trials: dict[str, dict],
                       config_hashes: dict[str, str] | None = None, description: str | None = None,
                       start_times: dict[str, int] | None = None) -> dict[str, str]:
    """One parent run per trial (trial name -> MLflow run id), created only where missing.

    ``trials`` maps each trial name to its resolved config (nested, or flat with dot-path keys);
    the flattened config becomes the run's params. ``config_hashes`` gives each trial's config
    hash in the experiment database, tagged ``spikelab.config_hash`` (without one, a hash of the
    params stands in). A parent is found again by its trial name and that hash, so calling this
    twice gives the same runs, and a trial whose config changed gets a new parent instead of
    conflicting params. A new parent starts at ``start_times[name]`` (ms since the epoch; default
    now) and stays RUNNING until its repeats have run. ``description`` becomes the experiment's
    description (its ``mlflow.note.content``). Call it from the parent process before any worker
    starts.
    """
    with tracking_lock(tracking_uri):  # the client sets up MLflow's schema when it is created
        client = _client(tracking_uri)
        experiment_id = _ensure_experiment(client, tracking_uri, experiment_name, None)
    describe_experiment(client, experiment_id, description)
    existing: dict[tuple[str | None, str | None], Any] = {}
    for run in _search_runs(client, experiment_id, f"tags.`{KIND_TAG}` = 'trial'"):
        existing.setdefault((run.data.tags.get(TRIAL_TAG), run.data.tags.get(CONFIG_HASH_TAG)), run)
    parents: dict[str, str] = {}
    groups: dict[str, str] = {}  # staged trial -> the run its stages nest under
    for name, config in trials.items():
        params = mlflow_params(config)
        digest = (config_hashes or {}).get(name) or params_digest(params)
        run = existing.get((name, digest))
        if run is None:
            tags = {KIND_TAG: "trial", TRIAL_TAG: name, CONFIG_HASH_TAG: digest}
            staged = _staged_trial(config)
            if staged is not None:
                tags[PARENT_TAG] = _stage_group(client, experiment_id, staged, groups)
            run = client.create_run(experiment_id, run_name=name, start_time=(start_times or {}).get(name), tags=tags)
        missing = {k: v for k, v in params.items() if k not in run.data.params}
        _log_batch(client, run.info.run_id, params=missing)
        parents[name] = run.info.run_id
    return parents


def _staged_trial(config: dict[str, Any]) -> str | None:
    """The trials.yaml trial a stage's trial belongs to (settings.stages), None for other trials."""
    stage = config.get("stage")
    return stage.get("trial") if isinstance(stage, dict) else config.get("stage.trial")


def _stage_group(client: Any, experiment_id: str, trial: str, groups: dict[str, str]) -> str:
    """The run that the stages of staged trial ``trial`` nest under (a FINISHED container, tagged
    ``spikelab.kind: staged_trial``), found again or created."""
    if trial not in groups:
        found = [r for r in _search_runs(client, experiment_id, f"tags.`{KIND_TAG}` = 'staged_trial'")
                 if r.data.tags.get(TRIAL_TAG) == trial]
        if found:
            groups[trial] = found[0].info.run_id
        else:
            run = client.create_run(experiment_id, run_name=trial, tags={KIND_TAG: "staged_trial", TRIAL_TAG: trial})
            client.set_terminated(run.info.run_id, "FINISHED")
            groups[trial] = run.info.run_id
    return groups[trial]


def params_digest(params: dict[str, str]) -> str:
    """A short hash of MLflow params (a parent's identity when no database hash is given)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def describe_experiment(client: Any, experiment_id: str, description: str | None) -> None:
    """The experiment's description in the MLflow UI (the tag ``mlflow.note.content``) and its
    kind, model training (``mlflow.experimentKind``: MLflow 3's UI then opens its runs, not the
    GenAI traces); tags already right are not written again."""
    tags = client.get_experiment(experiment_id).tags
    wanted = {EXPERIMENT_KIND_TAG: MODEL_TRAINING}
    if description:
        wanted[DESCRIPTION_TAG] = description[:MAX_TAG_VAL_LENGTH]
    for key, value in wanted.items():
        if tags.get(key) != value:
            client.set_experiment_tag(experiment_id, key, value)


#: (file or folder in the run folder, where it goes among the run's MLflow artifacts)
ARTIFACTS = (("config.yaml", ""), ("run.json", ""), ("metrics.csv", ""), ("confusion.json", ""),
             ("plots", "plots"), ("recordings", "recordings"), ("checkpoints/best.pt", "checkpoints"))


def run_artifacts(run_dir: str | Path) -> list[tuple[Path, str]]:
    """The files of a run folder the mirror logs (see :data:`ARTIFACTS`), each with its artifact
    path (``plots/recordings/raster_epoch_0.png`` -> ``plots/recordings``), in a fixed order."""
    root = Path(run_dir)
    found: list[tuple[Path, str]] = []
    for name, where in ARTIFACTS:
        path = root / name
        if path.is_file():
            found.append((path, where))
        elif path.is_dir():
            found += [(file, file.parent.relative_to(root).as_posix()) for file in sorted(path.rglob("*"))
                      if file.is_file() and not file.name.endswith(".tmp")]
    return found


def log_run_artifacts(client: Any, run_id: str, run_dir: str | Path, skip: set[str] = frozenset()) -> int:
    """Log :func:`run_artifacts` of ``run_dir`` into the MLflow run, except the artifact paths in
    ``skip`` (``plots/learning_curves.png``); how many files were logged."""
    logged = 0
    for path, where in run_artifacts(run_dir):
        if (f"{where}/{path.name}" if where else path.name) in skip:
            continue
        client.log_artifact(run_id, str(path), where or None)
        logged += 1
    return logged


class MLflowCallback(Callback):
    """Mirrors one repeat into an MLflow child run of its trial's parent run.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///outputs/mlflow.db`` by default).
        experiment_name: the MLflow experiment (created by :func:`ensure_parent_runs`).
        parent_run_id: the trial's parent run, from :func:`ensure_parent_runs`.
        run_name: the child run's name, the repeat's output folder (``trial/repeat_0``).
        params: the run's resolved config, nested or flat; logged as params.
        tags: extra tags for the child run.

    Per epoch one ``log_batch`` call with every metric of that epoch (step = epoch); at the end
    the summary and the run folder's files (:func:`run_artifacts`). Store errors are retried
    ``attempts`` times, ``retry_wait_s`` apart (doubling), then the mirror switches itself off
    for this run with a warning; it never stops the training. It runs after every other
    callback, so the plots and recordings of the end of the fit are there to log.
    """

    order = 98
    attempts = 3
    retry_wait_s = 1.0

    def __init__(self, tracking_uri: str, experiment_name: str, parent_run_id: str, run_name: str,
                 params: dict, tags: dict | None = None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.parent_run_id = parent_run_id
        self.run_name = run_name
        self.params = mlflow_params(params)
        self.tags = {mlflow_key(k): str(v)[:MAX_TAG_VAL_LENGTH] for k, v in (tags or {}).items()}
        self.run_id: str | None = None
        self.disabled = False
        self._client: Any = None
        self._logged_steps: set[int] = set()

    def on_fit_start(self, state: FitState) -> None:
        self._call("start the child run", self._start, state)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        if self.run_id is None or epoch in self._logged_steps:
            return
        batch = _metrics(metrics, step=epoch)  # built once, so a retried batch is the same batch
        if self._call(f"log epoch {epoch}", _log_batch, self._client, self.run_id, batch):
            self._logged_steps.add(epoch)

    def on_fit_end(self, state: FitState) -> None:
        if self.run_id is None:
            return
        metrics = _metrics({k: v for k, v in state.summary.items() if _is_number(v)}, step=state.epoch,
                           prefix="summary.")
        tags = {mlflow_key(f"summary.{k}"): str(v)[:MAX_TAG_VAL_LENGTH]
                for k, v in state.summary.items() if not _is_number(v)}
        if state.stop_reason is not None:
            tags["spikelab.stop_reason"] = state.stop_reason[:MAX_TAG_VAL_LENGTH]
        if not self._call("log the summary", _log_batch, self._client, self.run_id, metrics, tags=tags):
            return
        if state.run_dir is not None:
            try:
                log_run_artifacts(self._client, self.run_id, state.run_dir)
            except Exception as exc:  # noqa: BLE001 (missing files are a loss of the view only)
                first = str(exc).splitlines()[0] if str(exc) else ""
                log.warning("MLflow mirror: could not log the files of %s (%s: %s); `python main.py mlflow-sync` "
                            "logs them later", self.run_name, type(exc).__name__, first)
        self._call("finish the child run", self._client.set_terminated, self.run_id, "FINISHED")

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        if self.run_id is None:
            return
        interrupted = isinstance(exc, KeyboardInterrupt)  # tools.signals.Terminated (SIGTERM) included
        error = f"{type(exc).__name__}: {exc}"[:MAX_TAG_VAL_LENGTH]
        # an interrupt gets one try: the user is waiting for the process to exit
        attempts = 1 if interrupted else None
        if self._call("record the error", _log_batch, self._client, self.run_id, tags={"spikelab.error": error},
                      attempts=attempts):
            self._call("close the child run", self._client.set_terminated, self.run_id,
                       "KILLED" if interrupted else "FAILED", attempts=attempts)

    def _start(self, state: FitState) -> None:
        with tracking_lock(self.tracking_uri):  # the client sets up MLflow's schema when it is created
            client = _client(self.tracking_uri)
            experiment_id = _ensure_experiment(client, self.tracking_uri, self.experiment_name, None)
        siblings = _search_runs(client, experiment_id, f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'")
        earlier = [run for run in siblings if run.info.run_name == self.run_name]
        if state.resumed_from is not None and earlier:
            run = earlier[-1]
            client.update_run(run.info.run_id, status="RUNNING")
            logged = _logged_steps(client, run.info.run_id, {k for row in state.history for k in row})
        else:
            for stale in earlier:  # a fresh start replaces what an earlier attempt left
                client.delete_run(stale.info.run_id)
            run = client.create_run(experiment_id, run_name=self.run_name,
                                    tags={PARENT_TAG: self.parent_run_id, KIND_TAG: "repeat"})
            logged = set()
        tags = {**self.tags, "spikelab.seed": str(state.seed)}
        if state.run_dir is not None:
            tags["spikelab.run_dir"] = str(state.run_dir)
        missing = {k: v for k, v in self.params.items() if k not in run.data.params}
        _log_batch(client, run.info.run_id, params=missing, tags=tags)
        for row in state.history:  # epochs restored by a resume that the child lacks
            epoch = int(row["epoch"])
            if epoch not in logged:
                _log_batch(client, run.info.run_id, _metrics(row, step=epoch))
                logged.add(epoch)
        self._client, self.run_id, self._logged_steps = client, run.info.run_id, logged

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, attempts: int | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with retries; None (and the mirror switched off) when it keeps failing."""
        if self.disabled:
            return None
        attempts = attempts or self.attempts
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001  (MLflow, SQLAlchemy, OS and network errors alike)
                if attempt < attempts and _transient(exc):
                    time.sleep(self.retry_wait_s * 2 ** (attempt - 1))
                    attempt += 1
                    continue
                self.disabled = True
                log.warning("MLflow mirror off for %s: could not %s (%s: %s); training goes on and the "
                            "experiment database still records the run", self.run_name, what,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                return None

    def __repr__(self) -> str:
        return f"MLflowCallback({self.tracking_uri!r}, run_name={self.run_name!r})"


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _ensure_experiment(client: Any, tracking_uri: str, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_location or default_artifact_location(tracking_uri)
        if location is not None and "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)  # the folder `mlflow ui` is pointed at
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # another process created it meanwhile
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _search_runs(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    """Every active run of the experiment that matches, oldest first (all result pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _logged_steps(client: Any, run_id: str, keys: set[str]) -> set[int]:
    """The steps the run holds for any of ``keys`` (an epoch's batch is written whole or not at all)."""
    steps: set[int] = set()
    for key in keys - {"epoch"}:
        steps.update(int(m.step) for m in client.get_metric_history(run_id, mlflow_key(key)))
    return steps


def _metrics(values: dict[str, Any], step: int, prefix: str = "") -> list[Any]:
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    return [Metric(mlflow_key(prefix + key), float(value), timestamp, int(step))
            for key, value in values.items() if key != "epoch" and _is_number(value)]


def _log_batch(client: Any, run_id: str, metrics: Sequence[Any] = (), params: dict[str, str] | None = None,
               tags: dict[str, str] | None = None) -> bool:
    """``client.log_batch`` in as few calls as MLflow's limits allow (one for a usual epoch)."""
    from mlflow.entities import Param, RunTag

    metrics = list(metrics)
    params_left = [Param(k, v) for k, v in (params or {}).items()]
    tags_left = [RunTag(k, v) for k, v in (tags or {}).items()]
    while metrics or params_left or tags_left:
        params_now, params_left = params_left[:MAX_PARAMS_TAGS_PER_BATCH], params_left[MAX_PARAMS_TAGS_PER_BATCH:]
        tags_now, tags_left = tags_left[:MAX_PARAMS_TAGS_PER_BATCH], tags_left[MAX_PARAMS_TAGS_PER_BATCH:]
        room = MAX_ENTITIES_PER_BATCH - len(params_now) - len(tags_now)
        metrics_now, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=metrics_now, params=params_now, tags=tags_now)
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _transient(exc: Exception) -> bool:
    if isinstance(exc, ImportError):
        return False
    code = getattr(exc, "error_code", None)
    return code is None or code in TRANSIENT_ERRORS


def _sqlite_path(tracking_uri: str) -> Path | None:
    """The absolute database file of a ``sqlite:///`` URI; None for other URIs and in-memory SQLite."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().resolve()


def _query(uri: str) -> str:
    return "?" + uri.split("?", 1)[1] if "?" in uri else ""
