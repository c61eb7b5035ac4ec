"""From the four files (plus ``--set`` overrides) to fully resolved, validated trials."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings.env import Env
from settings.errors import ConfigError, ConfigIssue
from settings.experiment_files import ExperimentFiles, ExperimentSettings, TrialSettings, read_experiment_files
from settings.names import MAX_FOLDER_BYTES, folder_name
from settings.paths import deep_merge, parse_path, set_path
from settings.registries import PIPELINES
from settings.registry import Registry
from settings.schema import validate, validate_fields
from settings.stages import Stage, check_stage_models, parse_stages, stage_base, stage_trial_name, with_stage
from settings.sweep import expand_trial, search_probe
from settings.yaml_io import parse_scalar


@dataclass(frozen=True)
class Override:
    """One ``--set PATH=VALUE``; PATH addresses config.yaml, or env.yaml with an ``env.`` prefix,
    or experiment.yaml with an ``experiment.`` prefix."""

    path: str
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> "Override":
        if "=" not in text:
            raise ConfigError(ConfigIssue("", f"expects PATH=VALUE, got {text!r}", "--set"))
        path, raw = text.split("=", 1)
        path = path.strip()
        try:
            parse_path(path)
        except ValueError:
            raise ConfigError(ConfigIssue("", f"has a malformed path, got {path!r}; write PATH=VALUE with dot paths "
                                          "and integer indices, such as model.layers[0].out_features=3",
                                          "--set")) from None
        return cls(path, parse_scalar(raw), text)


@dataclass(frozen=True)
class ResolvedTrial:
    """A trial (one sweep point) with its fully resolved config (env included under ``env``)."""

    name: str
    config: dict
    repeat: int
    info: dict | None = None
    sweep_point: dict | None = None
    group: str | None = None  # the trials.yaml entry a sweep point came from

    @property
    def env(self) -> Env:
        return Env(**self.config["env"])

    @property
    def stage(self) -> dict | None:
        """The ``stage`` block of a staged trial's stage (settings.stages), None otherwise."""
        return self.config.get("stage")


@dataclass(frozen=True)
class ResolvedExperiment:
    folder: Path
    settings: ExperimentSettings
    trials: list[ResolvedTrial]
    files: ExperimentFiles
    overrides: tuple[Override, ...] = ()  # --set on config/env, applied to every trial
    searches: tuple[TrialSettings, ...] = ()  # model-based searches, sampled while the experiment runs
    experiment_overrides: tuple[Override, ...] = ()  # --set experiment.* (already in ``settings``)
    selected: bool = False  # --trial picked some trials: the others were neither resolved nor checked

    def resolve_point(self, name: str, settings: dict, values: dict, repeat: int, group: str,
                      info: dict | None = None) -> ResolvedTrial:
        """A trial for a point sampled during a search, validated like every other trial."""
        config = resolve_config(self.files.config, self.files.env, settings, list(self.overrides))
        return ResolvedTrial(name, config, repeat, info, values, group)


def resolve_config(config: dict, env: dict, settings: dict | None = None,
                   overrides: list[Override] = (), root: Registry = PIPELINES) -> dict:
    """Merge ``settings`` and ``overrides`` onto config + env, validate, return the resolved config."""
    combined = deep_merge({**copy.deepcopy(config), "env": copy.deepcopy(env)}, settings or {})
    issues: list[ConfigIssue] = []
    for override in overrides:
        try:
            set_path(combined, override.path, copy.deepcopy(override.value))
        except KeyError as exc:
            issues.append(ConfigIssue(override.path, f"does not exist ({exc.args[0]} cannot be addressed)", "--set"))
    if issues:
        raise ConfigError(issues)
    env_raw = combined.pop("env", None) or {}
    resolved_env: dict = {}
    try:
        resolved_env = validate_fields(env_raw, Env, "env", "env.yaml")
    except ConfigError as exc:
        issues.extend(exc.issues)
    try:
        resolved = validate(combined, root, "", env=resolved_env or None)
    except ConfigError as exc:
        issues.extend(exc.issues)
        resolved = {}
    if issues:
        set_paths = {o.path: o for o in overrides}
        raise ConfigError([ConfigIssue(i.path, i.message, "--set") if i.path in set_paths else i for i in issues])
    resolved["env"] = resolved_env
    return resolved


def resolve_experiment(folder: str | Path, set_args: list[str] = (), only: list[str] | None = None,
                       root: Registry = PIPELINES) -> ResolvedExperiment:
    """Load, merge, expand sweeps and validate every trial; raise one ConfigError with all issues."""
    overrides = [Override.parse(text) for text in set_args]
    experiment_overrides = {o.path[len("experiment."):]: o.value for o in overrides if o.path.startswith("experiment.")}
    config_overrides = [o for o in overrides if not o.path.startswith("experiment.")]
    files = read_experiment_files(folder, experiment_overrides)
    names = [t.name for t in files.trials]
    wanted, matched = set(only or ()), set()
    issues: list[ConfigIssue] = []
    trials: list[ResolvedTrial] = []
    searches: list[TrialSettings] = []
    seen: dict[str, str] = {}
    issues += _overrides_of_varied_paths(files.trials, config_overrides, wanted)
    for trial in files.trials:
        whole = not wanted or trial.name in wanted  # --trial names a trial, or single sweep points
        repeat = trial.repeat or files.experiment.repeat
        try:
            points = expand_trial(trial, files.experiment.seed)
        except ConfigError as exc:
            if whole:
                issues.extend(exc.located(f"trials.yaml ({trial.name})").issues)
            continue
        if not whole:
            points = [p for p in points if p.values and p.name in wanted]
            if not points:
                continue
        matched |= {trial.name} if whole else {p.name for p in points}
        stages = None
        if trial.stages is not None:
            try:
                if not points:
                    raise ConfigError(ConfigIssue("stages", "do not go with a model-based search (method: tpe); "
                                                            "use a random search or a sweep"))
                stages = parse_stages(trial.stages)
            except ConfigError as exc:
                issues.extend(exc.located(f"trials.yaml ({trial.name})").issues)
                continue
        if not points and trial.search is not None:  # model-based search: probe its space now
            try:
                for end in (0, -1):  # both corners of the space: a too-large upper bound fails here, not mid-run
                    probe = search_probe(trial, end)
                    resolve_config(files.config, files.env, probe.settings, config_overrides, root)
                searches.append(trial)
            except ConfigError as exc:
                issues.extend(exc.located(f"trials.yaml ({trial.name})").issues)
            continue
        for point in points:
            where = f"trial {point.name!r}"
            if point.name in seen:
                issues.append(ConfigIssue("name", f"{point.name!r} is produced twice (also by {seen[point.name]})",
                                          "trials.yaml"))
                continue
            seen[point.name] = trial.name
            size = len(folder_name(point.name).encode("utf-8"))
            if size > MAX_FOLDER_BYTES:
                issues.append(ConfigIssue("sweep", f"makes a point name too long for a folder ({size} bytes), got "
                                          f"{point.name[:40]!r}...; at most {MAX_FOLDER_BYTES} (shorten the trial "
                                          "name or the swept values)", f"trials.yaml ({trial.name})"))
                continue
            if stages is not None:
                staged = resolve_stages(files, point.name, point.settings, stages, config_overrides, root)
                if isinstance(staged, ConfigError):
                    issues.extend(staged.issues)
                    continue
                for name, _ in staged:
                    if name in seen:
                        issues.append(ConfigIssue("name", f"{name!r} is produced twice (also by {seen[name]})",
                                                  "trials.yaml"))
                    seen.setdefault(name, trial.name)
                trials += [ResolvedTrial(name, config, repeat, trial.info, point.values or None,
                                         trial.name if point.values else None) for name, config in staged]
                continue
            try:
                config = resolve_config(files.config, files.env, point.settings, config_overrides, root)
            except ConfigError as exc:
                issues.extend(exc.located(where).issues)
                continue
            trials.append(ResolvedTrial(point.name, config, repeat, trial.info, point.values or None,
                                        trial.name if point.values else None))
    unknown = [n for n in only or () if n not in matched]
    if unknown:
        raise ConfigError(ConfigIssue("", f"no trial or sweep point named {', '.join(map(repr, unknown))}; trials: "
                                      f"{', '.join(names)} (`python main.py config DIR` lists the sweep points)",
                                      "--trial"))
    if issues:
        raise ConfigError(_dedupe(issues))
    return ResolvedExperiment(files.folder, files.experiment, trials, files, tuple(config_overrides), tuple(searches),
                              tuple(o for o in overrides if o.path.startswith("experiment.")), bool(only))


def resolve_stages(files: ExperimentFiles, name: str, settings: dict | None, stages: list[Stage],
                   overrides: list[Override], root: Registry) -> list[tuple[str, dict]] | ConfigError:
    """``(trial name, resolved config)`` of each stage of trial (point) ``name``, or the ConfigError of
    every problem found in them."""
    issues: list[ConfigIssue] = []
    configs: dict[str, dict] = {}
    try:
        config, env = stage_base(files.config, files.env, settings)
    except ConfigError as exc:
        return exc.located(f"trial {name!r}")
    for stage in stages:
        try:
            resolved = resolve_config(config, env, stage.settings, overrides, root)
        except ConfigError as exc:
            issues.extend(exc.located(f"trial {name!r} ({stage.path}: {stage.name})").issues)
            continue
        configs[stage.name] = with_stage(resolved, name, stage)
    if not issues:
        issues = [ConfigIssue(i.path, i.message, f"trials.yaml ({name})") for i in check_stage_models(stages, configs)]
    if issues:
        return ConfigError(issues)
    return [(stage_trial_name(name, stage), configs[stage]) for stage in configs]


def _overrides_of_varied_paths(trials: list[TrialSettings], overrides: list[Override],
                               wanted: set[str]) -> list[ConfigIssue]:
    """A ``--set`` on a path that a sweep or search varies would replace every value it takes."""
    def overlaps(a: str, b: str) -> bool:
        return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))

    issues = []
    for trial in trials:
        varied = []
        for key in (trial.sweep or {}):
            varied += list(key) if isinstance(key, tuple) else [key]
        varied += list(((trial.search or {}).get("params") or {}))
        for override in overrides:
            hit = next((p for p in varied if isinstance(p, str) and overlaps(override.path, p)), None)
            if hit is not None and (not wanted or any(w == trial.name or w.startswith(trial.name + "-") for w in wanted)):
                issues.append(ConfigIssue("", f"{override.path} is varied by trial {trial.name!r} ({hit}), so the "
                                              "--set would replace every value it takes; drop the --set or change "
                                              "the trial", "--set"))
    return issues


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """The same problem in several trials (it comes from config.yaml, a sweep or ``--set``)
    shows once."""
    first: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}
    out: list[ConfigIssue] = []
    for issue in issues:
        key = (issue.path, issue.message)
        if key in first and issue.where.startswith("trial "):
            repeats[first[key]] = repeats.get(first[key], 0) + 1
            continue
        if key in first and issue.where == out[first[key]].where:
            continue
        first[key] = len(out)
        out.append(issue)
    for index, n in repeats.items():
        issue = out[index]
        out[index] = ConfigIssue(issue.path, f"{issue.message} (and in {n} more trial{'s' if n > 1 else ''})",
                                 issue.where)
    return out
