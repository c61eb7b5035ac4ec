"""What makes a run a run, checked before anything is written.

A run is identified by ``(experiment version, config hash, repeat)`` and writes into
``<version folder>/<safe trial name>/repeat_<k>/``. These checks refuse, with one line each, the
inputs that would make two runs share a record or a folder: two trials with the same resolved
config, two trial names whose folders differ only in letter case (one folder on macOS and
Windows), a trial whose config changed since
the version recorded it, and a version folder that belongs to another database.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from experiment.plan import canonical, config_hash, safe_name
from experiment.store import ExperimentRecord, TrialRecord
from experiment.store.engine import absolute_url
from experiment.store.params import flatten
from settings.errors import ConfigError, ConfigIssue, format_value
from settings.names import folder_key
from settings.resolve import ResolvedTrial

OWNER_FILE = ".spikelab-owner.json"  # in each version folder: the database and experiment it belongs to
RESERVED_FOLDERS = ("config", "report")  # a version folder's own subfolders: no trial may write there


def check_distinct(trials: Iterable[ResolvedTrial]) -> None:
    """Refuse trials that would share runs (same config hash) or run folders (names equal but for
    letter case, or a reserved folder)."""
    issues: list[ConfigIssue] = []
    by_hash: dict[str, str] = {}
    by_folder: dict[str, str] = {}
    for trial in trials:
        digest = config_hash(trial.config)
        if digest in by_hash:
            issues.append(ConfigIssue("", f"trials {by_hash[digest]!r} and {trial.name!r} resolve to the same "
                                          "config, so they would share their runs; make them differ or drop one",
                                      "trials.yaml"))
        by_hash.setdefault(digest, trial.name)
        folder = folder_key(safe_name(trial.name))
        if folder in RESERVED_FOLDERS:
            issues.append(ConfigIssue("", f"trial name {trial.name!r} is reserved (outputs/<experiment>/{folder}/ "
                                          "holds the experiment's own files); rename it", "trials.yaml"))
        if folder in by_folder:
            issues.append(ConfigIssue("", f"trials {by_folder[folder]!r} and {trial.name!r} differ only in letter "
                                          "case, so they would share a run folder on macOS and Windows; rename one",
                                      "trials.yaml"))
        by_folder.setdefault(folder, trial.name)
    if issues:
        raise ConfigError(issues)


def check_seeding(experiment: ExperimentRecord, seed: int, seeds: str) -> None:
    """Refuse a root seed (or seeding mode) other than the one the version's runs derive from:
    the runs would keep their recorded seeds while the YAML claims others."""
    recorded = experiment.files.get("experiment", {}).get("seeds", seeds)
    changes = [f"{key} {old!r} -> {new!r}" for key, old, new in
               (("seed", experiment.root_seed, seed), ("seeds", recorded, seeds)) if old != new]
    if changes:
        raise ConfigError(ConfigIssue("", f"{', '.join(changes)} since experiment {experiment.name!r} version "
                                          f"{experiment.version} recorded its runs; run with --fresh for a new "
                                          "version, or restore it", "experiment.yaml"))


def first_difference(old: dict, new: dict) -> str:
    """``key old -> new`` for the first flattened key that differs ('' when none does)."""
    before, after = dict(flatten(old)), dict(flatten(new))
    for key in sorted(before.keys() | after.keys()):
        if key not in before or key not in after or canonical(before[key]) != canonical(after[key]):
            shown = [format_value(side[key]) if key in side else "unset" for side in (before, after)]
            return f"{key} {shown[0]} -> {shown[1]}"
    return ""


def check_unchanged(experiment: ExperimentRecord, recorded: list[TrialRecord],
                    trials: Iterable[ResolvedTrial]) -> None:
    """Refuse trials whose config differs from the one the version recorded under the same name,
    and new trial names whose config an already recorded trial has (they would share its runs)."""
    by_name = {t.name: t for t in recorded}
    by_hash = {t.config_hash: t.name for t in recorded}
    where = f"experiment {experiment.name!r} version {experiment.version}"
    issues: list[ConfigIssue] = []
    for trial in trials:
        digest = config_hash(trial.config)
        old = by_name.get(trial.name)
        if old is not None and old.config_hash != digest:
            change = first_difference(old.config, trial.config)
            extend = " (or --extend to train its runs on to more epochs)" if change.startswith("epochs ") else ""
            issues.append(ConfigIssue("", f"trial {trial.name!r} changed since {where} recorded it"
                                          f"{' (' + change + ')' if change else ''}; run with --fresh for a new "
                                          f"version{extend}, or restore its config", "trials.yaml"))
        elif old is None and digest in by_hash:
            issues.append(ConfigIssue("", f"trial {trial.name!r} resolves to the same config as trial "
                                          f"{by_hash[digest]!r} of {where}, so they would share their runs; make "
                                          "them differ, or run with --fresh for a new version", "trials.yaml"))
    if issues:
        raise ConfigError(issues)


def read_owner(folder: Path) -> dict | None:
    """The owner record of a version folder (None when it has none)."""
    try:
        return json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def check_folder_owner(folder: Path, db_url: str, name: str, version: int, recorded: bool) -> None:
    """Refuse a version folder that another database (or experiment) wrote, or whose version
    this database does not hold (``recorded`` False: the database was deleted or re-created)."""
    owner = read_owner(folder)
    if owner is None:
        return
    mine = {"db": absolute_url(db_url), "experiment": name, "version": version}
    if any(owner.get(key) != value for key, value in mine.items()):
        raise ConfigError(ConfigIssue("", f"{folder} holds the runs of experiment {owner.get('experiment')!r} "
                                          f"version {owner.get('version')} in {owner.get('db')}, not of this "
                                          f"database; use another base_dir or experiment name, or that --db",
                                      "base_dir"))
    if not recorded:
        raise ConfigError(ConfigIssue("", f"{folder} holds the runs of experiment {name!r} version {version}, "
                                          f"which {owner.get('db')} no longer records (deleted or re-created?); "
                                          "move that folder away or use another base_dir", "base_dir"))


def check_source_version(source: Path, name: str, latest: ExperimentRecord | None, fresh: bool) -> None:
    """``run outputs/<experiment>_vK`` (a saved config folder) adds runs to the latest version; refuse
    it when that folder is an older version's, instead of silently growing another version."""
    if fresh or latest is None:
        return
    version_folder = source.parent if source.name == "config" else source
    owner = read_owner(version_folder)
    if owner is None or owner.get("experiment") != name or owner.get("version") == latest.version:
        return
    raise ConfigError(ConfigIssue("", f"{version_folder} is version {owner.get('version')} of {name!r}, but runs "
                                      f"go to its latest version ({latest.version}): run that version's folder, or "
                                      "pass --fresh for a new version", "DIR"))


def claim_folder(folder: Path, db_url: str, experiment: ExperimentRecord) -> None:
    """Write the owner file of a version folder (once)."""
    path = folder / OWNER_FILE
    if path.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"db": absolute_url(db_url), "experiment": experiment.name,
                                "version": experiment.version, "experiment_id": experiment.id}, indent=2) + "\n")
