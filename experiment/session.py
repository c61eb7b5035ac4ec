"""``python main.py run``: plan, record, execute, report.

The parent process alone creates/migrates the schema, opens the experiment version, writes the
trials (with their params) and the run rows (PENDING), marks dead runs STALE, mirrors trials to
MLflow, then hands the runs that still need work to an executor, and drives model-based
searches (each sampled point becomes a trial like any other). Running the same command again
executes only what is not COMPLETED.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from experiment.executors import Executor, InlineExecutor, make_executor
from experiment.extension import check_extension, extension_epochs, runs_to_extend, task_config
from experiment.identity import (check_distinct, check_folder_owner, check_seeding, check_source_version,
                                 check_unchanged, claim_folder)
from experiment.mlflow_sync import mlflow_experiment_name
from experiment.outputs import check_outputs
from experiment.plan import PlannedRun, plan_trial
from experiment.stages import depth_levels, init_info, link_external, link_local, upstream_problem, upstream_run
from experiment.store import ExperimentRecord, NewRun, RunRecord, RunStatus, SQLStore, environment_capsule
from experiment.store.engine import absolute_url
from experiment.worker import MLflowTarget, RunOutcome, RunTask
from settings.errors import ConfigError, ConfigIssue
from settings.experiment_files import BASE_CONFIG, FILE_NAMES, TrialSettings
from settings.loggers import LoggerSettings
from settings.metrics import TEST_ACC, TRAIN_ACC, VAL_ACC
from settings.names import experiment_folder_name
from settings.resolve import Override, ResolvedExperiment, ResolvedTrial
from tools.devices import available_cores
from tools.processes import process_is_dead


@dataclass
class SessionResult:
    experiment: ExperimentRecord
    db_url: str
    run_root: Path
    outcomes: list[RunOutcome] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    mlflow_uri: str | None = None
    loggers: LoggerSettings = LoggerSettings()  # experiment.yaml's extra writers, for what run prints
    # the final state of the selected runs, read from the database at the end (whoever ran them)
    unfinished: list[str] = field(default_factory=list)  # PENDING, INTERRUPTED, STALE, or RUNNING by a dead worker
    still_failed: list[str] = field(default_factory=list)  # FAILED
    running_elsewhere: list[str] = field(default_factory=list)  # "label (pid P on HOST)": RUNNING in another process

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == RunStatus.FAILED.value]

    @property
    def exit_code(self) -> int:
        """0: every selected run is COMPLETED now (by this session or another); 3: some are not."""
        return 3 if self.unfinished or self.still_failed or self.running_elsewhere else 0


def copy_config_files(source: Path, target: Path, overrides: tuple[Override, ...] = (),
                      experiment_overrides: tuple[Override, ...] = ()) -> None:
    """Keep the four files as ``outputs/<experiment>/config/`` (``run`` accepts that folder too).
    ``--set`` overrides of config/env are written into every trial's ``settings`` (applied last,
    as they were) and ``--set experiment.*`` into experiment.yaml, so that running the saved
    folder resolves to the same experiment."""
    if source.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in (*FILE_NAMES, BASE_CONFIG):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    if overrides:
        from settings.yaml_io import dump_yaml, load_yaml

        path = source / "trials.yaml"
        trials = (load_yaml(path) if path.is_file() else None) or [{"name": "default"}]
        for trial in trials:
            trial["settings"] = {**(trial.get("settings") or {}), **{o.path: o.value for o in overrides}}
        (target / "trials.yaml").write_text(dump_yaml(trials))
    if experiment_overrides:
        from settings.paths import set_path
        from settings.yaml_io import dump_yaml, load_yaml

        path = source / "experiment.yaml"
        settings = (load_yaml(path) if path.is_file() else None) or {}
        for override in experiment_overrides:
            set_path(settings, override.path[len("experiment."):], override.value)
        (target / "experiment.yaml").write_text(dump_yaml(settings))


def needs_work(run: RunRecord, max_retries: int, retry_failed: bool) -> bool:
    """PENDING, INTERRUPTED and STALE runs run (again); FAILED ones up to ``max_retries`` retries."""
    if run.status in (RunStatus.PENDING, RunStatus.INTERRUPTED, RunStatus.STALE):
        return True
    return run.status == RunStatus.FAILED and (retry_failed or run.attempts <= max_retries)


def threads_per_run(executor: Executor, env_threads: int | None) -> int:
    """env.yaml's ``threads``, or (``null``) an equal share of the cores per worker."""
    return env_threads or max(1, available_cores() // executor.n_jobs)


def json_safe(value: object) -> object:
    """Tuple keys (tied sweep paths) become ``"[a, b]"`` strings; tuples become lists."""
    if isinstance(value, dict):
        return {(f"[{', '.join(map(str, k))}]" if isinstance(k, tuple) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


class ExperimentSession:
    """One ``run`` command: owns the store connection of the parent process."""

    def __init__(self, resolved: ResolvedExperiment, *, db_url: str | None = None, fresh: bool = False,
                 n_jobs: int | None = None, progress: bool = True, retry_failed: bool = False,
                 mlflow: bool | None = None, out: TextIO | None = None, extend: bool = False):
        self.resolved, self.settings = dataclasses.replace(resolved, trials=link_local(resolved.trials)), resolved.settings
        # --extend: the epochs the selected runs train to (checked in open(), before anything is written)
        self.extend_to = extension_epochs(resolved.overrides) if extend else None
        self.db_url = db_url or self.settings.db_url
        self.fresh, self.progress, self.retry_failed, self.out = fresh, progress, retry_failed, out or sys.stdout
        self.executor = make_executor(self.settings.executor.backend, n_jobs or self.settings.executor.n_jobs,
                                      self.settings.executor.address)
        self.use_mlflow = self.settings.mlflow.enabled if mlflow is None else mlflow
        self.extra_callbacks: dict[str, Any] = {}  # trial name -> live callback (inline executor only)
        self.parents: dict[str, str] = {}
        self.bar = None

    @property
    def root_seed(self) -> int:
        return self.settings.seed

    # --- recording the plan ------------------------------------------------------------------
    def open(self) -> None:
        """Check that the trials keep their runs' identity (nothing written on refusal), then open
        the experiment version and its folder."""
        check_distinct(self.resolved.trials)
        check_outputs(self.settings, self.db_url if self.db_url != self.settings.db_url else None, self.use_mlflow)
        self.executor.check()
        if self.resolved.searches:
            from experiment.search import check_pruning

            check_pruning(list(self.resolved.searches), self.executor)
        name, store, latest = self.settings.name, None, None
        if not self.db_url.startswith("sqlite:///") or Path(self.db_url[len("sqlite:///"):]).is_file():
            store = SQLStore.create(self.db_url)  # the parent alone creates or migrates the schema
        try:
            latest = None if store is None else store.get_experiment(name)
            self.resolved = dataclasses.replace(self.resolved, trials=link_external(self.resolved.trials, store))
            version = 1 if latest is None else latest.version + int(self.fresh)
            check_source_version(self.resolved.folder, name, latest, self.fresh)
            check_folder_owner(Path(self.settings.base_dir) / experiment_folder_name(name, version), self.db_url,
                               name, version, recorded=latest is not None and not self.fresh)
            if self.extend_to is not None:
                if self.fresh:
                    raise ConfigError(ConfigIssue("", "continues recorded runs; it cannot start a new version "
                                                      "(--fresh)", "--extend"))
                if self.resolved.searches:
                    raise ConfigError(ConfigIssue("", f"does not continue searches ({self.resolved.searches[0].name!r}); "
                                                      "pick the trials or sweep points to extend with --trial",
                                                      "--extend"))
                staged = next((t.stage["trial"] for t in self.resolved.trials if t.stage), None)
                if staged is not None:
                    raise ConfigError(ConfigIssue("", f"does not continue staged trials ({staged!r}: a longer upstream "
                                                      "stage would change its downstream stages' identity); pick "
                                                      "other trials with --trial, or run with --fresh", "--extend"))
                recorded = ([], []) if latest is None else (store.trials(latest.id), store.runs(latest.id))
                trials = check_extension(latest, *recorded, self.resolved.trials, self.extend_to)
                self.resolved = dataclasses.replace(self.resolved, trials=trials)
            if latest is not None and not self.fresh:
                check_seeding(latest, self.settings.seed, self.settings.seeds)
                check_unchanged(latest, store.trials(latest.id), self.resolved.trials)
        except BaseException:
            if store is not None:
                store.close()
            raise
        self.store = store or SQLStore.create(self.db_url)
        files = self.resolved.files
        raw = json_safe({"experiment": dataclasses.asdict(self.settings), "config": files.config,
                         "env": files.env, "trials": [dataclasses.asdict(t) for t in files.trials]})
        self.experiment = self.store.open_experiment(self.settings.name, self.settings.desc, self.settings.seed,
                                                     str(self.resolved.folder), raw, environment_capsule(),
                                                     fresh=self.fresh)
        self.run_root = Path(self.settings.base_dir) / experiment_folder_name(self.settings.name,
                                                                              self.experiment.version)
        claim_folder(self.run_root, self.db_url, self.experiment)
        if self.extend_to is None and (not self.resolved.selected or not (self.run_root / "config").is_dir()):
            # a --trial run checked only its trials: the saved files keep the version's other trials as they were
            copy_config_files(self.resolved.folder, self.run_root / "config", self.resolved.overrides,
                              self.resolved.experiment_overrides)
        self.result = SessionResult(self.experiment, self.db_url, self.run_root, loggers=self.settings.loggers)
        if self.use_mlflow:
            self.result.mlflow_uri = self.settings.mlflow_uri

    def record(self, trials: list[ResolvedTrial]) -> list[tuple[PlannedRun, RunRecord]]:
        """Write trials and their runs (idempotent); return every run with its current record."""
        pairs: list[tuple[PlannedRun, RunRecord]] = []
        recorded: dict[tuple[str, int], int] = {}  # (config hash, repeat) -> run id, for the stages downstream
        for level in depth_levels(trials):  # upstream stages first: their run ids go into their downstream's rows
            planned: list[PlannedRun] = []
            new_runs: list[NewRun] = []
            for trial in level:
                runs = plan_trial(trial, self.settings.seed, self.settings.seeds, self.run_root)
                record = self.store.upsert_trial(self.experiment.id, trial.name, trial.config, runs[0].config_hash,
                                                 trial.sweep_point, trial.info, trial.group)
                planned += runs
                stage = (trial.stage or {}).get("name")
                new_runs += [NewRun(record.id, p.config_hash, p.repeat, p.seed, str(p.output_dir), stage,
                                    upstream_run(self.store, self.experiment.id, trial, p.repeat, recorded))
                             for p in runs]
            records = self.store.ensure_runs(self.experiment.id, new_runs)
            recorded.update({(r.config_hash, r.repeat): r.id for r in records})
            pairs += list(zip(planned, records))
        return pairs

    def tasks(self, pairs: list[tuple[PlannedRun, RunRecord]]) -> list[RunTask]:
        if self.use_mlflow and pairs:
            self.mirror_trials({p.trial.name: p.trial.config for p, _ in pairs},
                               {p.trial.name: p.config_hash for p, _ in pairs})
        executor, info = self.executor, {"experiment": self.settings.name, "version": self.experiment.version,
                                         "db": self.db_url}
        return [RunTask(absolute_url(self.db_url), self.experiment.id, record.id, plan.label,
                        task_config(plan.trial.config, record), plan.seed, str(plan.output_dir),
                        {**info, "trial": plan.trial.name, "repeat": plan.repeat, "seed": plan.seed,
                         "config_hash": plan.config_hash, "run_id": record.id,
                         **({"extended_epochs": record.extended_epochs} if record.extended_epochs is not None else {}),
                         **self.stage_info(plan, record)},
                        self.settings.heartbeat_s,
                        MLflowTarget(self.result.mlflow_uri, mlflow_experiment_name(self.experiment),
                                     self.parents[plan.trial.name], f"{plan.trial.name}/repeat_{plan.repeat}")
                        if self.use_mlflow else None,
                        self.progress and executor.n_jobs == 1,
                        threads_per_run(executor, plan.trial.config["env"]["threads"]), self.settings.run_plots,
                        loggers=self.settings.loggers)
                for plan, record in pairs]

    def stage_info(self, plan: PlannedRun, record: RunRecord) -> dict:
        """A stage's name and, for one that starts from another run, that run (settings.stages)."""
        if record.stage is None:
            return {}
        info: dict[str, Any] = {"stage": record.stage}
        if record.upstream_run_id is not None:
            info["init_from"] = init_info(plan.trial.config, self.store.run(record.upstream_run_id))
        return info

    def mirror_trials(self, configs: dict[str, dict], hashes: dict[str, str] | None = None) -> None:
        missing = {name: config for name, config in configs.items() if name not in self.parents}
        if not missing:
            return
        from experiment.mlflow_mirror import ensure_parent_runs

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
        ensure_sqlite_folder(self.result.mlflow_uri)
        try:
            self.parents.update(ensure_parent_runs(self.result.mlflow_uri, mlflow_experiment_name(self.experiment),
                                                   missing, hashes, self.settings.desc or None))
        except Exception as exc:  # noqa: BLE001 (the mirror is a view: it must never stop the sweep)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            print(f"warning: MLflow mirror off for this session: {type(exc).__name__}: {first}; the runs go on "
                  f"and the experiment database records everything (if {self.result.mlflow_uri} is damaged, "
                  "move it away: later runs mirror into a new one)", file=sys.stderr)
            self.use_mlflow, self.result.mlflow_uri = False, None

    def finish_mirror(self) -> None:
        """The trials' parent runs from the database, now that their runs are done: repeat means,
        status and end time (experiment.mlflow_sync.update_parents)."""
        if not (self.use_mlflow and self.parents):
            return
        from experiment.mlflow_sync import update_parents

        try:
            update_parents(self.store, self.experiment, self.result.mlflow_uri, self.parents)
        except Exception as exc:  # noqa: BLE001 (the mirror is a view: `mlflow-sync` rebuilds it)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            print(f"warning: MLflow parent runs not updated: {type(exc).__name__}: {first}; "
                  f"`python main.py mlflow-sync {self.settings.name}` rebuilds the mirror from the database",
                  file=sys.stderr)

    def todo(self, pairs: list[tuple[PlannedRun, RunRecord]]) -> list[tuple[PlannedRun, RunRecord]]:
        keep = []
        for plan, record in pairs:
            if needs_work(record, self.settings.max_retries, self.retry_failed):
                keep.append((plan, record))
            else:
                self.result.skipped[record.status.value] = self.result.skipped.get(record.status.value, 0) + 1
        return keep

    # --- executing -------------------------------------------------------------------------
    def on_done(self, outcome: RunOutcome) -> None:
        self.result.outcomes.append(outcome)
        line = describe_outcome(outcome)
        if self.bar is not None:
            self.bar.write(line, file=self.out)
            self.bar.update(1)
            self.bar.set_postfix(failed=len(self.result.failed), refresh=True)
        else:
            print(line, file=self.out, flush=True)

    def execute(self, tasks: list[RunTask]) -> None:
        """Run ``tasks`` in waves: a stage's run goes to the executor once its upstream run is
        COMPLETED; one whose upstream FAILED is recorded FAILED (naming it), one whose upstream is
        still unfinished (running elsewhere, or left for a later ``run``) stays as it is."""
        waiting = list(tasks)
        while waiting:
            ids = {task.run_id for task in waiting}
            wave = [t for t in waiting if t.info.get("init_from", {}).get("run_id") not in ids]
            waiting = [t for t in waiting if t not in wave]
            ready = []
            for task in wave:
                upstream = task.info.get("init_from", {}).get("run_id")
                problem = None if upstream is None else upstream_problem(self.store.run(upstream))
                if problem is None:
                    ready.append(task)
                elif self.store.run(upstream).status == RunStatus.FAILED:
                    self.store.fail_blocked(task.run_id, f"not started: {problem}")
                    if self.bar is not None:
                        self.bar.total += 1
                    self.on_done(RunOutcome(task.run_id, task.label, RunStatus.FAILED.value,
                                            error=f"not started: {problem}"))
                else:
                    print(f"  waiting {task.label}: {problem}", file=self.out)
            self.execute_ready(ready)

    def execute_ready(self, tasks: list[RunTask]) -> None:
        if not tasks:
            return
        if isinstance(self.executor, InlineExecutor):
            self.executor.callbacks_for = lambda task: [cb for name, cb in self.extra_callbacks.items()
                                                        if task.label.rsplit("/", 1)[0] == name]
        if self.bar is not None:
            self.bar.total += len(tasks)
            self.bar.refresh()
        self.executor.run(tasks, self.on_done)

    def run(self) -> SessionResult:
        self.open()
        try:
            pairs = self.record(self.resolved.trials)
            stale = self.store.mark_stale(self.experiment.id, 2 * self.settings.heartbeat_s, process_is_dead)
            extended = runs_to_extend(pairs, self.extend_to) if self.extend_to is not None else []
            self.store.extend_runs(extended, self.extend_to or 0)
            if stale or extended:
                pairs = [(plan, self.store.run(record.id)) for plan, record in pairs]
            todo = self.todo(pairs)
            searches = self.resolved.searches
            print(f"experiment {self.settings.name} (version {self.experiment.version}): "
                  f"{len(self.resolved.trials)} trial(s), {len(pairs)} run(s); {len(todo)} to run"
                  + (f"; {len(searches)} search(es)" if searches else ""), file=self.out)
            if extended:
                print(f"  extending {len(extended)} run(s) to {self.extend_to} epochs (from their last checkpoint)",
                      file=self.out)
            for status, count in sorted(self.result.skipped.items()):
                print(f"  skipping {count} {status.lower()} run(s)"
                      + (" (use --retry-failed to run them again)" if status == "FAILED" else ""), file=self.out)
            if stale:
                print(f"  {len(stale)} run(s) had lost their worker (STALE): resumed from their last checkpoint",
                      file=self.out)
            self.bar = overall_bar(self.progress, self.executor)
            try:
                self.execute(self.tasks(todo))
                for entry in searches:
                    self.search(entry)
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM (tools.signals.Terminated)
                self.interrupt_orphans()
                raise
            finally:
                if self.bar is not None:
                    self.bar.close()
            for crash in getattr(self.executor, "crashes", []):
                print(f"a worker process died ({crash}); the runs it took down were resumed", file=self.out)
            self.settle()
            self.finish_mirror()
            return self.result
        finally:
            self.store.close()

    def interrupt_orphans(self, wait_s: float = 10.0) -> None:
        """After an interrupt, runs whose local worker was stopped before it could record the
        interrupt itself (the pool is torn down) are marked INTERRUPTED, not left RUNNING."""
        deadline = time.monotonic() + wait_s
        while True:
            running = self.store.runs(self.experiment.id, [RunStatus.RUNNING])
            alive = [r for r in running if r.host == socket.gethostname() and r.pid != os.getpid()
                     and not process_is_dead(r.host, r.pid)]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.store.mark_stale(self.experiment.id, math.inf, process_is_dead, RunStatus.INTERRUPTED,
                              "interrupted: its worker was stopped with the sweep")

    def selected_runs(self) -> list[RunRecord]:
        """The runs of the selected trials (and of their searches' points), as the database has them now."""
        names = {t.name for t in self.resolved.trials}
        groups = {entry.name for entry in self.resolved.searches}
        names |= {t.name for t in self.store.trials(self.experiment.id) if t.group_name in groups}
        return [r for r in self.store.runs(self.experiment.id) if r.trial_name in names]

    def settle(self) -> None:
        """Sort every selected run that is not COMPLETED by its final state in the database."""
        result = self.result
        result.unfinished, result.still_failed, result.running_elsewhere = [], [], []
        for run in self.selected_runs():
            label = f"{run.trial_name}/repeat_{run.repeat}"
            if run.status == RunStatus.FAILED:
                result.still_failed.append(label)
            elif run.status == RunStatus.RUNNING and not process_is_dead(run.host, run.pid):
                result.running_elsewhere.append(f"{label} (pid {run.pid} on {run.host})")
            elif run.status != RunStatus.COMPLETED:
                result.unfinished.append(label)

    # --- model-based search ------------------------------------------------------------------
    def search(self, entry: TrialSettings) -> None:
        from experiment.search import run_search

        leftovers = [(plan, record) for plan, record in self.search_points(entry.name)
                     if needs_work(record, self.settings.max_retries, self.retry_failed)]
        self.execute(self.tasks(leftovers))
        run_search(entry, self, self.executor, lambda trials: self.tasks(self.todo(self.record(trials))))

    def search_points(self, group: str) -> list[tuple[PlannedRun, RunRecord]]:
        """The runs of the points a search already sampled (from the database)."""
        trials = {t.id: t for t in self.store.trials(self.experiment.id) if t.group_name == group}
        pairs = []
        for record in self.store.runs(self.experiment.id):
            trial = trials.get(record.trial_id)
            if trial is not None:
                resolved = ResolvedTrial(trial.name, trial.config, 0, trial.info, trial.sweep_point, group)
                pairs.append((PlannedRun(resolved, record.repeat, record.seed, record.config_hash,
                                         Path(record.output_dir)), record))
        return pairs

    def finished_points(self, group: str) -> dict[str, tuple[dict, list[float] | None]]:
        from settings.sweep import search_objectives

        entry = next(e for e in self.resolved.searches if e.name == group)
        objectives = search_objectives(entry.search)
        points = {}
        for trial in self.store.trials(self.experiment.id):
            if trial.group_name == group:
                points[trial.name] = (trial.sweep_point or {}, self.objective_values(trial.name, objectives))
        return points

    def add_search_point(self, entry: TrialSettings, name: str, values: dict) -> ResolvedTrial:
        settings = {**(entry.settings or {}), **values}
        repeat = entry.repeat or self.settings.repeat
        return self.resolved.resolve_point(name, settings, values, repeat, entry.name, entry.info)

    def objective_values(self, trial_name: str, objectives: list[dict]) -> list[float] | None:
        """Objective metrics averaged over the trial's COMPLETED runs; None if any is missing."""
        trial = next((t for t in self.store.trials(self.experiment.id) if t.name == trial_name), None)
        if trial is None:
            return None
        run_ids = {r.id for r in self.store.runs(self.experiment.id, [RunStatus.COMPLETED]) if r.trial_id == trial.id}
        values = []
        for objective in objectives:
            found = [v for r, k, v in self.store.summaries(self.experiment.id)
                     if r in run_ids and k == objective["metric"] and not math.isnan(v)]
            if not found:
                return None
            values.append(sum(found) / len(found))
        return values


def run_experiment(resolved: ResolvedExperiment, **options: Any) -> SessionResult:
    """Record and run every trial (and search) of ``resolved``; see ExperimentSession."""
    return ExperimentSession(resolved, **options).run()


def overall_bar(progress: bool, executor: Executor):
    """One bar over the runs of this session (runs done / total, failures, ETA); None when off."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=0, desc=f"runs ({executor.name} x{executor.n_jobs})", unit="run", dynamic_ncols=True,
                position=0, disable=None)


def describe_outcome(outcome: RunOutcome) -> str:
    return "\n".join([_outcome_line(outcome)] + [f"  {outcome.label}: {note}" for note in outcome.notes])


def _outcome_line(outcome: RunOutcome) -> str:
    if outcome.status == "SKIPPED":
        return f"skipped {outcome.label}: {outcome.error}"
    if outcome.status == RunStatus.FAILED.value:
        return f"FAILED {outcome.label} after {outcome.seconds:.1f}s: {outcome.error}"
    shown = ", ".join(f"{k} {outcome.final[k]:.4g}" for k in (TRAIN_ACC, VAL_ACC, TEST_ACC) if k in outcome.final)
    return f"done {outcome.label} in {outcome.seconds:.1f}s: {shown}"
