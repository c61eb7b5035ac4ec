"""The four files of an experiment folder and their schemas.

``experiment.yaml`` (the experiment), ``config.yaml`` (model, data, training), ``env.yaml``
(simulation environment) and ``trials.yaml`` (the trials), read from a folder or its
``config/`` subfolder (the layout Spikelab writes to ``outputs/<name>/config/``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from settings.errors import ConfigError, ConfigIssue, format_value
from settings.legacy import DIALECT, is_legacy, translate
from settings.loggers import LoggerSettings, expand_switches
from settings.names import name_problem
from settings.paths import join_path, set_path
from settings.schema import Ge, Lt, NonNegativeInt, PositiveFloat, PositiveInt, validate_fields
from settings.yaml_io import load_yaml
from tools.locations import DEFAULT_BASE_DIR, database_url

FILE_NAMES = ("experiment.yaml", "config.yaml", "env.yaml", "trials.yaml")
BASE_CONFIG = "base.yaml"  # config.yaml's name in the original framework's newer layout (settings.legacy)

# a root seed: numpy's SeedSequence takes any integer >= 0, the database stores it as a signed 64-bit integer
Seed = Annotated[int, Ge(0), Lt(2**63)]


@dataclass(frozen=True)
class ExecutorSettings:
    """How runs execute: ``inline`` (this process), ``loky`` (local worker processes), ``dask``."""

    backend: Literal["inline", "loky", "dask"] = "inline"
    n_jobs: PositiveInt = 1
    address: str | None = None


@dataclass(frozen=True)
class MLflowSettings:
    """MLflow mirror of the database (``tracking_uri`` defaults to ``<base_dir>/mlflow.db``)."""

    enabled: bool = True
    tracking_uri: str | None = None


@dataclass(frozen=True)
class ExperimentSettings:
    """experiment.yaml.

    Args:
        name: experiment name (default: the folder name).
        desc: free-text description.
        base_dir: results root (run folders, default DB and MLflow store).
        db: SQLAlchemy URL of the experiment database (default ``sqlite:///<base_dir>/spikelab.db``).
        seed: root seed; every run's seed derives from it with ``numpy.random.SeedSequence``.
        repeat: default number of repeats per trial.
        seeds: ``paired`` gives repeat k the same seed in every trial (paired comparisons);
            ``independent`` derives each run's seed from its config hash as well.
        executor: where runs execute.
        mlflow: MLflow mirror settings.
        max_retries: how often a FAILED run is retried by a later ``run`` of the experiment.
        heartbeat_s: seconds between heartbeats of a RUNNING run.
        run_plots: draw ``plots/`` in every completed run's folder, and its confusion matrix
            (one more pass over the test split; with the learning curves 0.8 s for a Digits run
            on a busy 2-core machine; turn it off for thousands of tiny runs).
        loggers: extra writers of every run: TensorBoard, a torch.profiler summary, Weights &
            Biases (``settings.loggers``).
    """

    name: str = ""
    desc: str = ""
    base_dir: str = DEFAULT_BASE_DIR
    db: str | None = None
    seed: Seed = 0
    repeat: PositiveInt = 1
    seeds: Literal["paired", "independent"] = "paired"
    executor: ExecutorSettings = ExecutorSettings()
    mlflow: MLflowSettings = MLflowSettings()
    max_retries: NonNegativeInt = 2
    heartbeat_s: PositiveFloat = 5.0
    run_plots: bool = True
    loggers: LoggerSettings = LoggerSettings()

    @property
    def db_url(self) -> str:
        return self.db or database_url(self.base_dir)

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{Path(self.base_dir) / 'mlflow.db'}"


@dataclass(frozen=True)
class TrialSettings:
    """One entry of trials.yaml.

    Args:
        name: unique trial name.
        repeat: repeats of this trial (default: experiment.yaml's ``repeat``).
        settings: deep-merged onto config.yaml (an ``env:`` key merges onto env.yaml).
        info: free-form notes stored with the trial.
        sweep: dot-path -> values; one trial per point of the Cartesian product.
        search: random or model-based search instead of a grid.
        stages: runs in stages, each a trial of its own (``settings.stages``).
    """

    name: str
    repeat: PositiveInt | None = None
    settings: dict | None = None
    info: dict | None = None
    sweep: dict | None = None
    search: dict | None = None
    stages: list | None = None


@dataclass(frozen=True)
class ExperimentFiles:
    """The raw contents of the four files (config and env are not validated yet)."""

    folder: Path
    experiment: ExperimentSettings
    config: dict
    env: dict
    trials: list[TrialSettings]
    dialect: str | None = None  # "original framework": the files were translated (settings.legacy)
    native: dict | None = None  # the four files as read, in the native schema: file name -> contents


def find_config_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(ConfigIssue("", f"is not a folder: {folder}", str(folder)))
    for candidate in (folder, folder / "config"):
        if (candidate / "config.yaml").is_file() or (candidate / BASE_CONFIG).is_file():
            return candidate
    raise ConfigError(ConfigIssue("", f"no config.yaml found (looked in {folder} and {folder / 'config'})",
                                  str(folder)))


def read_experiment_files(folder: str | Path, experiment_overrides: dict[str, Any] | None = None
                          ) -> ExperimentFiles:
    """Read and check the four files; every problem of experiment.yaml/trials.yaml at once."""
    source = find_config_folder(folder)
    raw: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for name in FILE_NAMES:
        path = source / name
        if name == "config.yaml" and not path.is_file():
            path = source / BASE_CONFIG
        try:
            raw[name] = load_yaml(path) if path.is_file() else None
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    dialect = None
    if is_legacy(raw["config.yaml"], raw["experiment.yaml"]):
        dialect = DIALECT
        translated = translate(_mapping(raw["experiment.yaml"], "experiment.yaml", issues),
                               _mapping(raw["config.yaml"], "config.yaml", issues),
                               _mapping(raw["env.yaml"], "env.yaml", issues), raw["trials.yaml"])
        raw = {"experiment.yaml": translated.experiment, "config.yaml": translated.config,
               "env.yaml": translated.env, "trials.yaml": translated.trials}
    experiment = _mapping(raw["experiment.yaml"], "experiment.yaml", issues)
    experiment.setdefault("name", Path(folder).resolve().name)
    native = copy.deepcopy({**raw, "experiment.yaml": experiment})  # before --set experiment.*
    for path, value in (experiment_overrides or {}).items():
        try:
            set_path(experiment, path, value)
        except (KeyError, ValueError):
            issues.append(ConfigIssue(f"experiment.{path}", "is not a setting of experiment.yaml", "--set"))
    config = _mapping(raw["config.yaml"], "config.yaml", issues)
    env = _mapping(raw["env.yaml"], "env.yaml", issues)
    trials_raw = raw["trials.yaml"] if raw["trials.yaml"] is not None else [{"name": "default"}]
    if not isinstance(trials_raw, list) or not trials_raw:
        issues.append(ConfigIssue("", f"must be a non-empty list of trials, got {format_value(trials_raw)}",
                                  "trials.yaml"))
        trials_raw = []

    settings = None
    try:
        settings = ExperimentSettings(**_nested(validate_fields(expand_switches(experiment), ExperimentSettings,
                                                                "", "experiment.yaml")))
        if problem := name_problem(settings.name):
            by_set = "name" in (experiment_overrides or {})
            issues.append(ConfigIssue("experiment.name" if by_set else "name", problem,
                                      "--set" if by_set else "experiment.yaml"))
    except ConfigError as exc:
        issues.extend(exc.located("experiment.yaml").issues)

    trials: list[TrialSettings] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(trials_raw):
        path = f"[{index}]"
        try:
            trial = TrialSettings(**validate_fields(item, TrialSettings, path, "a trial"))
        except ConfigError as exc:
            issues.extend(exc.located("trials.yaml").issues)
            continue
        if problem := name_problem(trial.name):
            issues.append(ConfigIssue(join_path(path, "name"), problem, "trials.yaml"))
            continue
        if trial.name in first_seen:
            issues.append(ConfigIssue(join_path(path, "name"), f"{trial.name!r} is used twice (first at "
                                      f"[{first_seen[trial.name]}]); trial names must be unique", "trials.yaml"))
        first_seen.setdefault(trial.name, index)
        trials.append(trial)
    if issues:
        raise ConfigError(issues)
    assert settings is not None
    return ExperimentFiles(source, settings, config, env, trials, dialect, native)


def _mapping(value: Any, where: str, issues: list[ConfigIssue]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.append(ConfigIssue("", f"must be a mapping, got {format_value(value)}", where))
        return {}
    return value


def _nested(resolved: dict) -> dict:
    """Turn the nested dataclass fields of ExperimentSettings into their objects."""
    out = dict(resolved)
    if isinstance(out.get("executor"), dict):
        out["executor"] = ExecutorSettings(**out["executor"])
    if isinstance(out.get("mlflow"), dict):
        out["mlflow"] = MLflowSettings(**out["mlflow"])
    if isinstance(out.get("loggers"), dict):
        out["loggers"] = LoggerSettings.from_resolved(out["loggers"])
    return out
