"""The read commands' way into a store: open it read-only from ``--db`` and find one experiment
version in it, with errors that name the argument to fix."""
from __future__ import annotations

from pathlib import Path

from experiment.store.base import ExperimentRecord, ExperimentStore
from experiment.store.sql import SQLStore
from settings.errors import ConfigError, ConfigIssue
from tools.locations import DEFAULT_DB


def open_readonly(db: str | None) -> SQLStore:
    """The store at ``db`` (default :data:`tools.locations.DEFAULT_DB`), read-only; a SQLite
    file that is not there is a ConfigError of ``--db``."""
    url = db or DEFAULT_DB
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise ConfigError(ConfigIssue("", f"no database at {url[len('sqlite:///'):]} (run an experiment first, "
                                          f"or pass --db URL)", "--db"))
    return SQLStore(url, readonly=True)


def find_experiment(store: ExperimentStore, name: str, version: int | None = None) -> ExperimentRecord:
    """The record of ``name`` at ``version`` (default: the latest); ConfigError listing what there is."""
    record = store.get_experiment(name, version)
    if record is not None:
        return record
    experiments = store.list_experiments()
    versions = [e.version for e in experiments if e.name == name]
    if versions:
        raise ConfigError(ConfigIssue("", f"experiment {name!r} has no version {version}; versions: "
                                          f"{', '.join(map(str, versions))}", "--version"))
    names = sorted({e.name for e in experiments})
    raise ConfigError(ConfigIssue("", f"no experiment named {name!r} in {store.url}; experiments: "
                                      f"{', '.join(names) or 'none'} (an experiment whose experiment.yaml sets "
                                      f"db or base_dir is in its own database: pass --db URL)", "EXPERIMENT"))


def extended_runs(store: ExperimentStore, experiment: ExperimentRecord) -> list[dict]:
    """The runs ``run --extend`` extended: trial, repeat, run id, the trial config's epochs and the
    epochs the run trains to now."""
    configured = {t.id: t.config.get("epochs") for t in store.trials(experiment.id)}
    return [{"trial": r.trial_name, "repeat": r.repeat, "run_id": r.id, "configured_epochs": configured[r.trial_id],
             "epochs": r.extended_epochs} for r in store.runs(experiment.id) if r.extended_epochs is not None]


def describe_extension(entry: dict) -> str:
    """``trial/repeat_k: 3 -> 6 epochs``."""
    return f"{entry['trial']}/repeat_{entry['repeat']}: {entry['configured_epochs']} -> {entry['epochs']} epochs"
