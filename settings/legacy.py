"""The original LIF/tempotron framework's four files, translated into the native schema.

That framework keeps an experiment in ``outputs/<name>/config/{config,env,experiment,trials}.yaml``
with ``model: {type: Network, layers: [...]}``, ``dataset: {..., encoder}``, ``lr_scheduler:
{type, args}``, ``pipeline: {type: TrainingPipeline, epochs, batch_size, validation_split,
callbacks}`` and ``db_path``. :func:`translate` turns such a folder's raw files into native ones
(docs/legacy_yaml.md has the table), which are then validated like any other experiment;
``python main.py config DIR --native`` prints them. Every translation problem is reported at
once, with its path in the original file.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings.errors import ConfigError, ConfigIssue, format_value
from settings.paths import deep_merge

DIALECT = "original framework"
#: keys only the original framework's files have (config.yaml, experiment.yaml)
CONFIG_MARKERS = ("dataset", "pipeline", "lr_scheduler")
EXPERIMENT_MARKERS = ("db_path",)
#: the original's callbacks that name what the platform always does: the database writer and
#: metric history (MetricsTracker), the MLflow mirror (MLflowCallback, experiment.yaml ``mlflow``)
BUILT_IN_CALLBACKS = ("MetricsTracker", "MLflowCallback")
#: what the original's DEN-kernel network trains with when config.yaml names no loss or rule
DEFAULT_LOSS, DEFAULT_RULE, DEFAULT_READOUT = "BinaryLoss", "SingleSpikeLR", "MaxMembrane"


@dataclass(frozen=True)
class Translation:
    """The four files in the native schema (trials as a list of trial mappings)."""

    experiment: dict
    config: dict
    env: dict
    trials: list


def is_legacy(config: Any, experiment: Any) -> bool:
    """Whether the raw files are in the original framework's layout."""
    if isinstance(config, dict) and (any(key in config for key in CONFIG_MARKERS) or is_network(config.get("model"))):
        return True
    return isinstance(experiment, dict) and any(key in experiment for key in EXPERIMENT_MARKERS)


def translate(experiment: dict, config: dict, env: dict, trials: Any) -> Translation:
    """The native files of an original-framework folder; ConfigError with every problem."""
    issues: list[ConfigIssue] = []
    native_config = translate_config(config, issues, "config.yaml")
    native_trials = trials
    if isinstance(trials, list):
        native_trials = [translate_trial(config, native_config, trial, index, issues)
                         for index, trial in enumerate(trials)]
    if issues:
        raise ConfigError(issues)
    return Translation(translate_experiment(experiment, config), native_config, copy.deepcopy(env), native_trials)


def translate_experiment(experiment: dict, config: dict) -> dict:
    """``db_path`` (a SQLite file) becomes ``db: sqlite:///<path>``; the MLflow mirror is on where
    config.yaml's ``pipeline`` lists an MLflowCallback, off where it does not (unless experiment.yaml
    sets ``mlflow``)."""
    out = {k: copy.deepcopy(v) for k, v in experiment.items() if k != "db_path"}
    path = experiment.get("db_path")
    if isinstance(path, str) and path and "db" not in experiment:
        out["db"] = f"sqlite:///{Path(path)}"
    pipeline = config.get("pipeline")
    if isinstance(pipeline, dict):
        callbacks = pipeline.get("callbacks")
        names = [c if isinstance(c, str) else c.get("type") for c in callbacks or [] if isinstance(c, (str, dict))]
        out.setdefault("mlflow", {"enabled": "MLflowCallback" in names})
    return out


def translate_trial(config: dict, native_config: dict, trial: Any, index: int, issues: list[ConfigIssue]) -> Any:
    """A trial whose ``settings`` (in the original's keys) merge onto config.yaml: its native
    ``settings`` are what the translated, merged config changes in the translated config.yaml."""
    if not isinstance(trial, dict) or not isinstance(trial.get("settings"), dict):
        return copy.deepcopy(trial)
    where = f"trials.yaml [{index}].settings"
    try:
        merged = deep_merge(config, trial["settings"])
    except ConfigError as exc:
        issues.extend(exc.located(where).issues)
        return copy.deepcopy(trial)
    found: list[ConfigIssue] = []
    native = translate_config(merged, found, where)
    known = {(i.path, i.message) for i in issues}  # a problem of config.yaml itself is reported there
    issues.extend(i for i in found if (i.path, i.message) not in known)
    out = {k: copy.deepcopy(v) for k, v in trial.items() if k != "settings"}
    settings = changes(native_config, native)
    return {**out, "settings": settings} if settings else out


_MISSING = object()


def changes(base: dict, new: dict) -> dict:
    """What ``new`` sets differently from ``base``, such that merging it onto ``base`` gives ``new``
    (every key of ``base`` is in ``new``): changed dicts recursively, a component of another
    type and every other value whole."""
    out = {}
    for key, value in new.items():
        old = base.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(value, dict) and old.get("type") == value.get("type"):
            inner = changes(old, value)
            if inner:
                out[key] = inner
        elif old != value:
            out[key] = copy.deepcopy(value)
    return out



def translate_config(config: dict, issues: list[ConfigIssue], where: str) -> dict:
    """config.yaml: ``model``, ``dataset``, ``lr_scheduler`` and ``pipeline`` in native keys; under
    an original ``Network``, ``loss`` and ``learning_rule`` default to BinaryLoss and SingleSpikeLR."""
    def issue(path: str, message: str) -> None:
        issues.append(ConfigIssue(path, message, where))

    out: dict[str, Any] = {}
    native = {k: v for k, v in config.items() if k not in ORIGINAL_KEYS}  # optimizer, loss, ... as they are
    dataset = config.get("dataset")
    if isinstance(dataset, dict):
        data = {k: copy.deepcopy(v) for k, v in dataset.items() if k not in ("len", "encoder")}
        if "len" in dataset:
            data["size"] = dataset["len"]
        out["data"] = data
        encoder = dataset.get("encoder")
        if isinstance(encoder, dict):
            out["encoder"] = {k: copy.deepcopy(v) for k, v in encoder.items() if k != "size"}
        elif encoder is not None:
            out["encoder"] = encoder
    elif dataset is not None:
        issue("dataset", f"must be a mapping with a type, got {format_value(dataset)}")
    if "model" in config:
        out["model"] = translate_model(config["model"], dataset if isinstance(dataset, dict) else {}, issue)
    scheduler = config.get("lr_scheduler")
    if isinstance(scheduler, dict):
        args = scheduler.get("args") or {}
        if not isinstance(args, dict):
            issue("lr_scheduler.args", f"must be a mapping of the scheduler's arguments, got {format_value(args)}")
            args = {}
        spec = {k: copy.deepcopy(v) for k, v in scheduler.items() if k != "args"}
        spec.update(copy.deepcopy(args))
        spec.setdefault("interval", "batch")  # the original stepped its scheduler every batch
        out["scheduler"] = spec
    elif scheduler is not None:
        issue("lr_scheduler", f"must be a mapping {{type, args}}, got {format_value(scheduler)}")
    pipeline = config.get("pipeline")
    if isinstance(pipeline, dict):
        translate_pipeline(pipeline, out, issue)
    elif pipeline is not None:
        issue("pipeline", f"must be a mapping, got {format_value(pipeline)}")
    # native keys win over what the original's keys translate to: a trial's or --set's native paths
    # (``epochs``, ``data.size``) that a saved copy of the folder holds in trials.yaml
    out = deep_merge(out, native)
    if is_network(config.get("model")):  # the original's DEN-kernel network
        out.setdefault("loss", DEFAULT_LOSS)
        out.setdefault("learning_rule", DEFAULT_RULE)
    first = [key for key in NATIVE_ORDER if key in out]
    return {key: out[key] for key in first + [k for k in out if k not in first]}


#: config.yaml's keys that only the original framework has
ORIGINAL_KEYS = ("model", "dataset", "lr_scheduler", "pipeline")
#: the order config.yaml's keys are written in (README's example)
NATIVE_ORDER = ("data", "encoder", "model", "loss", "learning_rule", "optimizer", "scheduler", "epochs",
                "batch_size", "callbacks")


def translate_model(model: Any, dataset: dict, issue) -> Any:
    """``{type: Network, layers: [{name, input_size, output_size, kernel}]}``: one Dense layer
    each (``output_size`` -> ``out_features``; ``name``, ``input_size`` and ``kernel.n`` are sizes
    the platform infers, checked here), read out by the maximal membrane voltage."""
    if not is_network(model):
        return copy.deepcopy(model)  # a native model
    if model.get("type", "Network") != "Network":
        issue("model.type", f"is not a network type of the original framework: got {format_value(model['type'])}; "
                            "valid: Network")
    layers = model["layers"]
    if not isinstance(layers, list):
        issue("model.layers", f"must be a list of layers, got {format_value(layers)}")
        return {}
    inputs = dataset.get("input_size")
    native = []
    for index, layer in enumerate(layers):
        path = f"model.layers[{index}]"
        if not isinstance(layer, dict):
            issue(path, f"must be a mapping {{name, input_size, output_size, kernel}}, got {format_value(layer)}")
            continue
        out = {"type": layer.get("type", "Dense")}
        if "output_size" in layer:
            out["out_features"] = layer["output_size"]
        out.update({k: copy.deepcopy(v) for k, v in layer.items()
                    if k not in ("type", "name", "input_size", "output_size")})
        size = layer.get("input_size")
        if size is not None and inputs is not None and size != inputs:
            source = "dataset.input_size" if index == 0 else f"model.layers[{index - 1}].output_size"
            issue(f"{path}.input_size", f"must equal {source} ({format_value(inputs)}), got {format_value(size)}")
        kernel = layer.get("kernel")
        if isinstance(kernel, dict):
            n = kernel.get("n")
            if n is not None and size is not None and n != size:
                issue(f"{path}.kernel.n", f"must equal {path}.input_size ({format_value(size)}), got {format_value(n)}")
            out["kernel"] = {k: copy.deepcopy(v) for k, v in kernel.items() if k != "n"}
        inputs = layer.get("output_size")
        native.append(out)
    translated = {k: copy.deepcopy(v) for k, v in model.items() if k not in ("type", "layers")}
    translated["layers"] = native
    translated.setdefault("readout", DEFAULT_READOUT)
    return translated


def is_network(model: Any) -> bool:
    """An original ``Network``: layers with the original's ``input_size``/``output_size`` (a native
    ``Network``'s layers have ``out_features``)."""
    layers = model.get("layers") if isinstance(model, dict) else None
    return isinstance(layers, list) and any(isinstance(layer, dict) and ("output_size" in layer or "input_size" in layer)
                                            for layer in layers)


def translate_pipeline(pipeline: dict, out: dict, issue) -> None:
    """``pipeline``'s settings become top-level keys; ``validation_split`` and ``test_split``
    become the data set's ``val_fraction`` and ``test_fraction``; callbacks are translated."""
    if pipeline.get("type", "TrainingPipeline") != "TrainingPipeline":
        issue("pipeline.type", f"is not a pipeline of the original framework: got {format_value(pipeline['type'])}; "
                               "valid: TrainingPipeline")
    for key, value in pipeline.items():
        if key == "type":
            continue
        if key in ("validation_split", "test_split"):
            if isinstance(out.get("data"), dict):
                out["data"]["val_fraction" if key == "validation_split" else "test_fraction"] = value
            else:
                issue(f"pipeline.{key}", "needs a dataset mapping to split")
        elif key == "callbacks":
            out["callbacks"] = translate_callbacks(value, issue)
        else:
            out[key] = copy.deepcopy(value)


def translate_callbacks(callbacks: Any, issue) -> Any:
    """MetricsTracker and MLflowCallback are what every run does already (dropped);
    EarlyStopping's ``metric`` is ``monitor``, minimised for a loss and maximised otherwise."""
    if not isinstance(callbacks, list):
        issue("pipeline.callbacks", f"must be a list of callbacks, got {format_value(callbacks)}")
        return []
    native = []
    for entry in callbacks:
        spec = {"type": entry} if isinstance(entry, str) else copy.deepcopy(entry)
        name = spec.get("type") if isinstance(spec, dict) else None
        if name in BUILT_IN_CALLBACKS:
            continue
        if name == "EarlyStopping" and "metric" in spec:
            metric = spec.pop("metric")
            spec["monitor"] = metric
            if isinstance(metric, str):
                spec.setdefault("mode", "min" if metric.endswith("loss") else "max")
        native.append(spec)
    return native
