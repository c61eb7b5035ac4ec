"""Staged trials in the experiment layer: identity, upstream runs, and the order runs go in.

``settings.stages`` resolves a staged trial into one trial per stage, each with a ``stage``
block in its config. Here that block is completed before anything is hashed: ``init_from``
gets the upstream stage's config hash (and, for a run of another experiment, the version and
config hash found in the database), so the upstream's config is part of the downstream's
identity. When runs execute, a downstream run is only handed to an executor once its upstream
run is COMPLETED; an upstream that FAILED fails it with a reason that names that run.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from experiment.plan import config_hash
from experiment.run_folder import RunFolder
from experiment.store import ExperimentStore, RunRecord, RunStatus
from settings.errors import ConfigError, ConfigIssue
from settings.resolve import ResolvedTrial
from settings.stages import stage_trial_name


def link_local(trials: Iterable[ResolvedTrial]) -> list[ResolvedTrial]:
    """Each stage that starts from a stage of its own trial gets that stage's config hash (stages
    come in dependency order, so an upstream is linked before its downstream)."""
    hashes: dict[str, str] = {}
    out = []
    for trial in trials:
        block = trial.stage
        ref = (block or {}).get("init_from")
        if ref is not None and "experiment" not in ref:
            if ref["trial"] not in hashes:
                raise ConfigError(ConfigIssue("", f"stage {block['name']!r} of trial {block['trial']!r} starts from "
                                                  f"{ref['trial']!r}, which is not planned with it", "trials.yaml"))
            trial = _with_ref(trial, {**ref, "config_hash": hashes[ref["trial"]]})
        hashes[trial.name] = config_hash(trial.config)
        out.append(trial)
    return out


def link_external(trials: Iterable[ResolvedTrial], store: ExperimentStore | None) -> list[ResolvedTrial]:
    """Each stage that starts from a run of another experiment gets that experiment's version and
    the referenced trial's config hash; ConfigError when the database holds no such trial or its
    referenced runs are not COMPLETED (nothing is written then)."""
    out, issues = [], []
    for trial in trials:
        block = trial.stage
        ref = (block or {}).get("init_from")
        if ref is None or "experiment" not in ref:
            out.append(trial)
            continue
        where = f"trials.yaml ({block['trial']})"
        found = None if store is None else store.get_experiment(ref["experiment"], ref["version"])
        if found is None:
            what = f"version {ref['version']} of " if ref["version"] else ""
            issues.append(ConfigIssue("init_from.experiment", f"names {what}experiment {ref['experiment']!r}, which "
                                                              "this database does not hold", where))
            out.append(trial)
            continue
        name = external_trial_name(ref)
        upstream = next((t for t in store.trials(found.id) if t.name == name), None)
        if upstream is None:
            issues.append(ConfigIssue("init_from.trial", f"names trial {name!r}, which experiment "
                                                         f"{found.name!r} version {found.version} does not have", where))
            out.append(trial)
            continue
        runs = {r.repeat: r for r in store.runs(found.id) if r.trial_id == upstream.id}
        wanted = [ref["repeat"]] if ref["repeat"] is not None else list(range(trial.repeat))
        missing = [k for k in wanted if k not in runs or runs[k].status != RunStatus.COMPLETED]
        if missing:
            issues.append(ConfigIssue("init_from", f"needs COMPLETED runs of {found.name}/{name}, but repeat(s) "
                                                   f"{', '.join(map(str, missing))} are not (run that experiment "
                                                   "first, or set init_from.repeat)", where))
        out.append(_with_ref(trial, {**ref, "version": found.version, "config_hash": upstream.config_hash}))
    if issues:
        raise ConfigError(issues)
    return out


def external_trial_name(ref: dict) -> str:
    """The referenced experiment's trial: ``<trial>.<stage>``, or ``<trial>`` without a stage."""
    return stage_trial_name(ref["trial"], ref["stage"]) if ref.get("stage") else ref["trial"]


def _with_ref(trial: ResolvedTrial, ref: dict) -> ResolvedTrial:
    config = {**trial.config, "stage": {**trial.config["stage"], "init_from": ref}}
    return dataclasses.replace(trial, config=config)


def depth_levels(trials: list[ResolvedTrial]) -> list[list[ResolvedTrial]]:
    """Trials by how many of this experiment's stages lie upstream of them (0 first)."""
    depth: dict[str, int] = {}
    for trial in trials:
        ref = (trial.stage or {}).get("init_from")
        local = ref is not None and "experiment" not in ref
        depth[trial.name] = depth[ref["trial"]] + 1 if local else 0
    levels: list[list[ResolvedTrial]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for trial in trials:
        levels[depth[trial.name]].append(trial)
    return levels


def upstream_run(store: ExperimentStore, experiment_id: int, trial: ResolvedTrial, repeat: int,
                 local: dict[tuple[str, int], int]) -> int | None:
    """The id of the run that repeat ``repeat`` of a stage starts from (None: it starts from
    scratch). ``local``: (config hash, repeat) -> run id of the runs recorded so far."""
    ref = (trial.stage or {}).get("init_from")
    if ref is None:
        return None
    if "experiment" not in ref:
        return local[(ref["config_hash"], repeat)]
    found = store.get_experiment(ref["experiment"], ref["version"])
    name = external_trial_name(ref)
    wanted = ref["repeat"] if ref["repeat"] is not None else repeat
    run = next(r for r in store.runs(found.id) if r.trial_name == name and r.repeat == wanted)
    return run.id


def init_info(trial_config: dict, upstream: RunRecord) -> dict:
    """What a worker needs to start a stage from its upstream run: the checkpoint file, the
    submodules to copy, and the upstream run's id and label (written to the run's run.json)."""
    ref = trial_config["stage"]["init_from"]
    return {"run_id": upstream.id, "label": f"{upstream.trial_name}/repeat_{upstream.repeat}",
            "checkpoint": str(RunFolder(upstream.output_dir).checkpoint(ref["checkpoint"])),
            "modules": list(ref["modules"])}


def upstream_problem(upstream: RunRecord) -> str | None:
    """Why a downstream run cannot start yet: None when its upstream is COMPLETED."""
    if upstream.status == RunStatus.COMPLETED:
        return None
    label = f"{upstream.trial_name}/repeat_{upstream.repeat}"
    detail = f": {upstream.error_type}: {upstream.error_message}" if upstream.error_type else ""
    return f"its upstream stage run {upstream.id} ({label}) is {upstream.status.value}{detail}"
