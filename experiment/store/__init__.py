"""The experiment store: an abstract interface (:class:`ExperimentStore`), its SQLAlchemy
implementation (:class:`SQLStore`), Alembic schema versions, the environment capsule, and the
read commands' way in (``open_readonly``, ``find_experiment``)."""
from __future__ import annotations

from experiment.store.base import (CLAIMABLE, AttemptRecord, ErrorInfo, ExperimentRecord, ExperimentStore, NewRun,
                                   RunRecord, RunStatus, TrialRecord)
from experiment.store.capsule import environment_capsule
from experiment.store.lookup import describe_extension, extended_runs, find_experiment, open_readonly
from experiment.store.migrate import (DatabaseNotFound, NotADatabase, SchemaOutdated, current_revision, head_revision,
                                      upgrade, upgrade_command)
from experiment.store.params import flatten, param_rows
from experiment.store.sql import SQLStore

__all__ = [
    "CLAIMABLE", "AttemptRecord", "DatabaseNotFound", "describe_extension", "extended_runs", "ErrorInfo", "ExperimentRecord", "ExperimentStore", "NewRun",
    "NotADatabase", "RunRecord", "RunStatus", "SQLStore", "SchemaOutdated", "TrialRecord", "current_revision",
    "environment_capsule", "find_experiment", "flatten", "head_revision", "open_readonly", "param_rows", "upgrade",
    "upgrade_command",
]
