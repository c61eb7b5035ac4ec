"""ORM row -> frozen record conversions; the only place records are built from rows."""
from __future__ import annotations

from experiment.store.base import AttemptRecord, ExperimentRecord, RunRecord, RunStatus, TrialRecord
from experiment.store.models import Attempt, Experiment, Run, Trial


def experiment_record(row: Experiment) -> ExperimentRecord:
    return ExperimentRecord(id=row.id, name=row.name, version=row.version, desc=row.desc, root_seed=row.root_seed,
                            created_at=row.created_at, config_dir=row.config_dir, files=row.files)


def trial_record(row: Trial) -> TrialRecord:
    return TrialRecord(id=row.id, experiment_id=row.experiment_id, name=row.name, group_name=row.group_name,
                       config=row.config, config_hash=row.config_hash, sweep_point=row.sweep_point, info=row.info)


def run_record(row: Run, trial_name: str) -> RunRecord:
    return RunRecord(id=row.id, experiment_id=row.experiment_id, trial_id=row.trial_id, trial_name=trial_name,
                     config_hash=row.config_hash, repeat=row.repeat, seed=row.seed, status=RunStatus(row.status),
                     created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
                     duration_s=row.duration_s, host=row.host, pid=row.pid, output_dir=row.output_dir,
                     attempts=row.attempts, error_type=row.error_type, error_message=row.error_message,
                     error_traceback=row.error_traceback, heartbeat_at=row.heartbeat_at, last_epoch=row.last_epoch)


def attempt_record(row: Attempt) -> AttemptRecord:
    return AttemptRecord(id=row.id, run_id=row.run_id, number=row.number, started_at=row.started_at,
                         finished_at=row.finished_at, host=row.host, pid=row.pid, exit_reason=row.exit_reason,
                         error_type=row.error_type, error_message=row.error_message, peak_rss_mb=row.peak_rss_mb)
