"""Staged trials: a trial whose runs come in stages, each stage starting from an earlier one.

```yaml
- name: stal_srnn
  settings: {...}                       # every stage's
  stages:
    - name: encoder                     # pretrain the encoder with its own loss
      settings: {loss: EncoderLoss, epochs: 5}
    - name: classifier
      init_from: encoder                # repeat k starts from the encoder stage's repeat k
      freeze: [encoder]                 # not trained: requires_grad off, BatchNorm/Dropout in eval mode
- name: from_elsewhere
  stages:
    - name: classifier
      init_from: {experiment: stal_pretrain, trial: stal, stage: encoder, repeat: 0, modules: [encoder]}
      freeze: [encoder]
```

A stage is a trial of its own, named ``<trial>.<stage>``, with its own runs: recorded, resumable
and shown like any other. Its config is the trial's config with the stage's ``settings`` merged
on top, plus a ``stage`` block (name, trial, the ``init_from`` reference) that the experiment layer
completes with the upstream stage's config hash, so that changing the upstream changes the
downstream's identity.

Submodules are named by their state-dict prefix (``encoder``, ``layers.0``): ``init_from.modules``
(default: the ``freeze`` list) are copied from the upstream run's checkpoint into the model's
submodules of the same names, and ``freeze`` names the submodules that are not trained. Both
are checked against the models the stages build before anything is written.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from settings.errors import ConfigError, ConfigIssue, format_value
from settings.names import name_problem
from settings.paths import deep_merge, join_path
from settings.registries import DATASETS, ENCODERS, MODELS
from settings.schema import NonNegativeInt, PositiveInt, build, validate_fields

STAGE_SEPARATOR = "."  # a stage's trial is named <trial>.<stage>


@dataclass(frozen=True)
class InitFrom:
    """Where a stage's pretrained submodules come from.

    Args:
        stage: a stage of this trial (or, with ``experiment``, of the referenced trial).
        experiment: another experiment of the same database (its latest version unless ``version``).
        version: that experiment's version.
        trial: the referenced experiment's trial (needed with ``experiment``).
        repeat: the referenced run's repeat (default: the same repeat as this run's).
        modules: the submodules (state-dict prefixes) copied (default: the stage's ``freeze`` list).
        checkpoint: ``best`` or ``last``: which checkpoint of the upstream run is read.
    """

    stage: str | None = None
    experiment: str | None = None
    version: PositiveInt | None = None
    trial: str | None = None
    repeat: NonNegativeInt | None = None
    modules: list[str] | None = None
    checkpoint: Literal["best", "last"] = "best"


@dataclass(frozen=True)
class StageSettings:
    """One entry of a trial's ``stages:`` list.

    Args:
        name: the stage's name (its runs belong to trial ``<trial>.<name>``).
        settings: deep-merged onto the trial's config for this stage.
        init_from: the stage (``encoder``) or run reference whose checkpoint initialises ``modules``.
        freeze: submodules (state-dict prefixes) that this stage does not train.
    """

    name: str
    settings: dict | None = None
    init_from: str | dict | None = None
    freeze: list[str] = ()


@dataclass(frozen=True)
class Stage:
    """A checked stage: its settings and its resolved reference (None: it starts from scratch)."""

    name: str
    settings: dict
    freeze: list[str]
    init_from: InitFrom | None
    path: str  # its YAML path inside trials.yaml: stages[1]


def stage_trial_name(trial: str, stage: str) -> str:
    return f"{trial}{STAGE_SEPARATOR}{stage}"


def parse_stages(raw: Any) -> list[Stage]:
    """Check a trial's ``stages:`` list (names, references, order); every problem at once."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(ConfigIssue("stages", f"must be a non-empty list of stages, got {format_value(raw)}"))
    issues: list[ConfigIssue] = []
    stages: list[Stage] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        path = f"stages[{index}]"
        try:
            entry = StageSettings(**validate_fields(item, StageSettings, path, "a stage"))
        except ConfigError as exc:
            issues += exc.issues
            continue
        if problem := name_problem(entry.name) or (STAGE_SEPARATOR in entry.name and
                                                   f"must not hold {STAGE_SEPARATOR!r}, got {entry.name!r}"):
            issues.append(ConfigIssue(join_path(path, "name"), problem))
            continue
        if entry.name in seen:
            issues.append(ConfigIssue(join_path(path, "name"), f"{entry.name!r} is used twice (first at "
                                                               f"stages[{seen[entry.name]}]); stage names must be unique"))
            continue
        seen[entry.name] = index
        reference = None
        if entry.init_from is not None:
            spec = {"stage": entry.init_from} if isinstance(entry.init_from, str) else entry.init_from
            where = join_path(path, "init_from")
            try:
                reference = InitFrom(**validate_fields(spec, InitFrom, where, "init_from"))
            except ConfigError as exc:
                issues += exc.issues
                continue
            if reference.modules is None and not entry.freeze:
                issues.append(ConfigIssue(join_path(where, "modules"), "is missing: say which submodules to copy "
                                                                       "from the upstream run (e.g. [encoder]), or "
                                                                       "freeze them"))
                continue
            if reference.modules is not None and not reference.modules:
                issues.append(ConfigIssue(join_path(where, "modules"), "must name at least one submodule"))
                continue
            if reference.experiment is None:
                for key in ("version", "trial", "repeat"):
                    if getattr(reference, key) is not None:
                        issues.append(ConfigIssue(join_path(where, key), "only goes with experiment: (a run of "
                                                                         "another experiment); remove it"))
                if reference.stage is None:
                    issues.append(ConfigIssue(join_path(where, "stage"), "is missing: name an earlier stage of "
                                                                         "this trial, or an experiment: and trial:"))
                elif reference.stage not in seen or reference.stage == entry.name:
                    known = [s for s in seen if s != entry.name]
                    later = reference.stage in [r.get("name") for r in raw[index + 1:] if isinstance(r, dict)]
                    what = ("the stage itself" if reference.stage == entry.name else
                            "a later stage" if later else "no earlier stage")
                    issues.append(ConfigIssue(join_path(where, "stage") if isinstance(entry.init_from, dict) else where,
                                              f"names {what}, got "
                                              f"{reference.stage!r}; a stage starts from one listed before it "
                                              f"(earlier: {', '.join(map(repr, known)) or 'none'})"))
            elif reference.trial is None:
                issues.append(ConfigIssue(join_path(where, "trial"), "is missing: which trial of experiment "
                                                                     f"{reference.experiment!r}"))
        stages.append(Stage(entry.name, dict(entry.settings or {}), list(entry.freeze), reference, path))
    if issues:
        raise ConfigError(issues)
    return stages


def stage_block(trial: str, stage: Stage) -> dict:
    """The ``stage`` block of a stage's resolved config (the experiment layer adds the upstream's
    config hash to ``init_from``)."""
    block: dict[str, Any] = {"name": stage.name, "trial": trial, "init_from": None}
    ref = stage.init_from
    if ref is not None:
        modules = list(ref.modules) if ref.modules is not None else list(stage.freeze)
        if ref.experiment is None:
            block["init_from"] = {"stage": ref.stage, "trial": stage_trial_name(trial, ref.stage),
                                  "modules": modules, "checkpoint": ref.checkpoint}
        else:
            block["init_from"] = {"experiment": ref.experiment, "version": ref.version, "trial": ref.trial,
                                  "stage": ref.stage, "repeat": ref.repeat, "modules": modules,
                                  "checkpoint": ref.checkpoint}
    return block


def stage_base(config: dict, env: dict, settings: dict | None) -> tuple[dict, dict]:
    """config.yaml and env.yaml with a trial's (point's) settings merged on, for its stages'
    settings to merge onto next."""
    merged = deep_merge({**copy.deepcopy(config), "env": copy.deepcopy(env)}, settings or {})
    env_part = merged.pop("env", None) or {}
    return merged, env_part


def with_stage(resolved: dict, trial: str, stage: Stage) -> dict:
    """A stage's resolved config: its freeze list joins the pipeline's, and the stage block is added."""
    out = dict(resolved)
    out["freeze"] = list(dict.fromkeys([*resolved.get("freeze", []), *stage.freeze]))
    out["stage"] = stage_block(trial, stage)
    return out


# --- checks against the models the stages build --------------------------------------------
def model_state_shapes(config: dict) -> dict[str, tuple[int, ...]] | None:
    """State-dict key -> shape of the model a resolved config builds, with every module name
    (key ``name`` -> ``()``) as well; None when it cannot be built without the data."""
    try:
        data = build(config["data"], DATASETS, "data")
        shape = data.shape()
        if shape is None:
            return None
        encoder = build(config["encoder"], ENCODERS, "encoder") if config.get("encoder") else None
        size = encoder.out_features(shape.features) if encoder is not None else shape.features
        model = build(config["model"], MODELS, "model", input_size=size)
    except Exception:  # noqa: BLE001 (a model this check cannot build is checked when its run starts)
        return None
    shapes: dict[str, tuple[int, ...]] = {name: () for name, _ in model.named_modules() if name}
    shapes.update({key: tuple(value.shape) for key, value in model.state_dict().items()})
    return shapes


def under(name: str, prefix: str) -> bool:
    """Whether state-dict key or module ``name`` lies under ``prefix``."""
    return name == prefix or name.startswith(prefix + ".")


def check_stage_models(stages: list[Stage], configs: dict[str, dict]) -> list[ConfigIssue]:
    """``freeze`` and ``init_from.modules`` name submodules that exist, and a copied submodule has
    the same parameters and shapes in both stages' models (``configs``: stage name -> resolved)."""
    shapes = {name: model_state_shapes(config) for name, config in configs.items()}
    issues = []
    for stage in stages:
        mine = shapes.get(stage.name)
        if mine is None:
            continue
        names = [key for key, shape in mine.items() if shape == () and key.count(".") <= 1]
        for i, prefix in enumerate(stage.freeze):
            if not any(under(key, prefix) for key in mine):
                issues.append(ConfigIssue(f"{stage.path}.freeze[{i}]", f"names no submodule of the model, got "
                                                                       f"{prefix!r}; its submodules: {', '.join(names)}"))
        ref = stage.init_from
        if ref is None:
            continue
        modules = ref.modules if ref.modules is not None else stage.freeze
        source = shapes.get(ref.stage) if ref.experiment is None else None
        where = f"{stage.path}.init_from.modules" if ref.modules is not None else f"{stage.path}.freeze"
        for i, prefix in enumerate(modules):
            if not any(under(key, prefix) for key in mine):
                if ref.modules is not None:
                    issues.append(ConfigIssue(f"{where}[{i}]", f"names no submodule of the model, got {prefix!r}; "
                                                               f"its submodules: {', '.join(names)}"))
                continue
            if source is None:
                continue
            theirs = {k: v for k, v in source.items() if under(k, prefix) and v != ()}
            ours = {k: v for k, v in mine.items() if under(k, prefix) and v != ()}
            if not theirs:
                issues.append(ConfigIssue(f"{where}[{i}]", f"names no submodule of stage {ref.stage!r}'s model, "
                                                           f"got {prefix!r}"))
            elif theirs != ours:
                diff = sorted(set(theirs.items()) ^ set(ours.items()))[0][0]
                issues.append(ConfigIssue(f"{where}[{i}]", f"{prefix!r} differs between stage {ref.stage!r} and "
                                                           f"this stage's model (first at {diff!r}); the copied "
                                                           "submodule must have the same parameters and shapes"))
    return issues
