"""Sweeps and random search in trials.yaml: one trials.yaml entry -> one or many points.

```yaml
- name: grid
  sweep:
    optimizer.lr: [0.001, 0.01, 0.1]                    # a value list
    model.layers[0].kernel.tau_m: {linspace: [5, 20, 4]} # numpy.linspace(5, 20, 4)
    training.batch_size: {range: [16, 65, 16]}           # 16, 32, 48, 64
    "[optimizer.lr, optimizer.weight_decay]": [[0.1, 0.01], [0.2, 0.02]]  # tied paths
- name: rand
  search:
    method: random
    n_trials: 20
    params:
      optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
      training.batch_size: {choice: [16, 32, 64]}
```
"""
from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from settings.errors import ConfigError, ConfigIssue, format_value
from settings.metrics import selection_metric_problem
from settings.paths import join_path, parse_path

GENERATORS = ("linspace", "logspace", "range")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")
SEARCH_METHODS = ("random", "tpe", "nsga2")
MODEL_BASED = ("tpe", "nsga2")  # sampled while the experiment runs (experiment/search.py)


@dataclass(frozen=True)
class SweepPoint:
    """One point: its trial name, the settings to merge and the swept values (path -> value)."""

    name: str
    settings: dict
    values: dict


def expand_values(spec: Any, path: str) -> list:
    """A value list or a generator mapping -> the list of values."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(ConfigIssue(path, "must list at least one value"))
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, args), = spec.items()
        if kind not in GENERATORS:
            raise ConfigError(ConfigIssue(path, f"unknown generator {kind!r}; allowed: {', '.join(GENERATORS)}"))
        if not isinstance(args, list) or len(args) != 3 or not all(
                isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ConfigError(ConfigIssue(join_path(path, kind), f"must be three numbers [a, b, n], got {format_value(args)}"))
        a, b, n = args
        if kind == "range":
            if b == a or n == 0 or (b - a) / n <= 0:
                raise ConfigError(ConfigIssue(join_path(path, kind), f"[start, stop, step] gives no values: {args}"))
            if all(isinstance(v, int) for v in args):
                return list(range(a, b, n))
            count = math.ceil((b - a) / n - 1e-9)  # stop is exclusive, robust to float round-off
            return [float(f"{a + i * n:.12g}") for i in range(count)]
        if not isinstance(n, int) or n < 1:
            raise ConfigError(ConfigIssue(join_path(path, kind), f"count must be an integer >= 1, got {format_value(n)}"))
        values = np.linspace(a, b, n) if kind == "linspace" else np.logspace(a, b, n)
        return [float(f"{v:.12g}") for v in values]
    raise ConfigError(ConfigIssue(path, f"must be a list of values or one of {{{', '.join(GENERATORS)}: [a, b, n]}}, "
                                        f"got {format_value(spec)}"))


def _paths(key: Any, where: str) -> tuple[str, ...]:
    if isinstance(key, tuple):
        paths = key
    elif isinstance(key, str) and key.startswith("[") and key.endswith("]"):
        paths = tuple(p.strip() for p in key[1:-1].split(",") if p.strip())
    else:
        paths = (key,)
    for p in paths:
        if not isinstance(p, str):
            raise ConfigError(ConfigIssue(where, f"sweep keys must be dot paths, got {format_value(p)}"))
        try:
            parse_path(p)
        except ValueError:
            raise ConfigError(ConfigIssue(where, f"{p!r} is not a valid path (use a.b[0].c)")) from None
    return paths


def _label(path: str, all_paths: list[str]) -> str:
    """The shortest dotted suffix of ``path`` that no other swept path shares."""
    parts = path.split(".")
    for n in range(1, len(parts) + 1):
        suffix = ".".join(parts[-n:])
        if sum(1 for p in all_paths if p == suffix or p.endswith("." + suffix)) == 1:
            return suffix
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return str(zlib.crc32(repr(value).encode()) % 10**6)
    return str(value)


def _settings(base: dict | None, assignments: dict[str, Any]) -> dict:
    """Trial settings plus swept assignments (index/dot paths are understood by deep_merge)."""
    out = dict(base or {})
    out.update(assignments)
    return out


def expand_grid(name: str, sweep: Any, base: dict | None) -> list[SweepPoint]:
    if not isinstance(sweep, dict) or not sweep:
        raise ConfigError(ConfigIssue("sweep", f"must map paths to values, got {format_value(sweep)}"))
    axes: list[tuple[tuple[str, ...], list]] = []
    for key, spec in sweep.items():
        where = f"sweep.{key if not isinstance(key, tuple) else '[' + ', '.join(map(str, key)) + ']'}"
        paths = _paths(key, where)
        values = expand_values(spec, where)
        if len(paths) > 1:
            values = [v if isinstance(v, list) and len(v) == len(paths) else [v] * len(paths) for v in values]
        else:
            values = [[v] for v in values]
        axes.append((paths, values))
    all_paths = [p for paths, _ in axes for p in paths]
    if len(set(all_paths)) != len(all_paths):
        raise ConfigError(ConfigIssue("sweep", "a path is swept twice"))
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        assignment: dict[str, Any] = {}
        for (paths, _), vals in zip(axes, combo):
            assignment.update(zip(paths, vals))
        label = "-".join(f"{_label(p, all_paths)}={_fmt(v)}" for p, v in assignment.items())
        points.append(SweepPoint(f"{name}-{label}", _settings(base, assignment), assignment))
    return points


def sample_distribution(spec: Any, rng: np.random.Generator, path: str) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(ConfigIssue(path, f"must be one of {{{', '.join(DISTRIBUTIONS)}: ...}}, got {format_value(spec)}"))
    (kind, args), = spec.items()
    check_distribution(kind, args, path)
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(low, high + 1))


def check_distribution(kind: str, args: Any, path: str) -> None:
    if kind not in DISTRIBUTIONS:
        raise ConfigError(ConfigIssue(path, f"unknown distribution {kind!r}; allowed: {', '.join(DISTRIBUTIONS)}"))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(ConfigIssue(join_path(path, kind), f"must be a non-empty list, got {format_value(args)}"))
        return
    numeric = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numeric or not all(math.isfinite(a) for a in args) or args[0] >= args[1]:
        raise ConfigError(ConfigIssue(join_path(path, kind), f"must be [low, high] with finite low < high, got "
                                                             f"{format_value(args)}"))
    if kind == "loguniform" and args[0] <= 0:
        raise ConfigError(ConfigIssue(join_path(path, kind), f"bounds must be > 0, got {format_value(args)}"))
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise ConfigError(ConfigIssue(join_path(path, kind), f"bounds must be integers, got {format_value(args)}"))


def search_seed(root_seed: int, trial_name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([root_seed, zlib.crc32(trial_name.encode())])


def expand_random(name: str, search: dict, base: dict | None, root_seed: int) -> list[SweepPoint]:
    """``n_trials`` points drawn from the root seed (a search checked by ``check_search``)."""
    n, params = search["n_trials"], search["params"]
    rng = np.random.default_rng(search_seed(search.get("seed", root_seed), name))
    width = len(str(n - 1))
    points = []
    for i in range(n):
        values = {key: sample_distribution(spec, rng, f"search.params.{key}") for key, spec in params.items()}
        points.append(SweepPoint(f"{name}-{i:0{width}d}", _settings(base, values), values))
    return points


OBJECTIVE_DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("none", "median")
#: the summary value a run stopped by the median pruner records: the epoch it was stopped after
PRUNED_AT_EPOCH = "pruned_at_epoch"
#: the median pruner's defaults: the first two runs are never stopped, nor any run before epoch 1
PRUNER_DEFAULTS = {"startup_runs": 2, "warmup_epochs": 1}


def check_search(search: dict) -> None:
    """The parts of a ``search:`` block that do not depend on the model config."""
    n = search.get("n_trials")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(ConfigIssue("search.n_trials", f"must be an integer >= 1, got {format_value(n)}"))
    params = search.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(ConfigIssue("search.params", f"must map paths to distributions, got {format_value(params)}"))
    for key, spec in params.items():
        _paths(key, f"search.params.{key}")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ConfigError(ConfigIssue(f"search.params.{key}", f"must be one of {{{', '.join(DISTRIBUTIONS)}: ...}}, "
                                                                  f"got {format_value(spec)}"))
        (kind, args), = spec.items()
        check_distribution(kind, args, f"search.params.{key}")
    allowed = {"method", "n_trials", "params", "objectives", "pruner", "seed",  # seed: instead of the root seed
               "population_size"}
    for key in search:
        if key not in allowed:
            raise ConfigError(ConfigIssue(f"search.{key}", f"is not a search setting; allowed: {', '.join(sorted(allowed))}"))
    objectives = search_objectives(search)
    for i, objective in enumerate(objectives):
        where = f"search.objectives[{i}]"
        if not isinstance(objective.get("metric"), str):
            raise ConfigError(ConfigIssue(where, f"needs metric: <summary key>, got {format_value(objective)}"))
        if problem := selection_metric_problem(objective["metric"]):
            raise ConfigError(ConfigIssue(f"{where}.metric", problem))
        if objective.get("direction", "maximize") not in OBJECTIVE_DIRECTIONS:
            raise ConfigError(ConfigIssue(f"{where}.direction", f"must be one of {', '.join(OBJECTIVE_DIRECTIONS)}, "
                                                                f"got {format_value(objective.get('direction'))}"))
    metrics = [o["metric"] for o in objectives]
    if len(set(metrics)) != len(metrics):
        raise ConfigError(ConfigIssue("search.objectives", f"names a metric twice: {', '.join(metrics)}"))
    seed = search.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(ConfigIssue("search.seed", f"must be an integer >= 0 and < {2**63}, got "
                                                     f"{format_value(seed)}"))
    method = search.get("method", "random")
    if median_pruner(search) is not None:
        if method not in MODEL_BASED:
            raise ConfigError(ConfigIssue("search.pruner", f"median needs a model-based search (method: "
                                                           f"{' or '.join(MODEL_BASED)}), got method {format_value(method)}"))
        if pruning_monitor(objectives[0]) is None:
            raise ConfigError(ConfigIssue("search.pruner", f"median prunes on the per-epoch values of the first "
                                                           f"objective, so it must be a best_<metric> or final_<metric> "
                                                           f"summary, got {objectives[0]['metric']!r}"))
    if "population_size" in search:
        size = search["population_size"]
        if method != "nsga2":
            raise ConfigError(ConfigIssue("search.population_size", f"applies to method: nsga2 only, got method "
                                                                    f"{format_value(method)}"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise ConfigError(ConfigIssue("search.population_size", f"must be an integer >= 2, got "
                                                                    f"{format_value(size)}"))


def median_pruner(search: dict) -> dict | None:
    """The median pruner's settings (``startup_runs``: runs never stopped, the first ones;
    ``warmup_epochs``: epochs before which no run is stopped) from ``pruner: median`` or
    ``pruner: {type: median, startup_runs: N, warmup_epochs: M}``; None for ``none``."""
    spec = search.get("pruner", "none")
    if spec == "none":
        return None
    if spec == "median":
        return dict(PRUNER_DEFAULTS)
    if not isinstance(spec, dict) or spec.get("type") not in PRUNERS:
        raise ConfigError(ConfigIssue("search.pruner", f"must be one of {', '.join(PRUNERS)} or {{type: median, "
                                                       f"startup_runs: N, warmup_epochs: M}}, got {format_value(spec)}"))
    settings = dict(PRUNER_DEFAULTS)
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in PRUNER_DEFAULTS:
            raise ConfigError(ConfigIssue(f"search.pruner.{key}", f"is not a pruner setting; allowed: type, "
                                                                  f"{', '.join(PRUNER_DEFAULTS)}"))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(ConfigIssue(f"search.pruner.{key}", f"must be an integer >= 0, got {format_value(value)}"))
        settings[key] = value
    return None if spec["type"] == "none" else settings


def pruning_monitor(objective: dict) -> str | None:
    """The per-epoch metric behind an objective's summary value: ``best_val_acc`` -> ``val_acc``,
    ``final_spikes_per_sample`` -> ``spikes_per_sample``; None for other summaries."""
    metric = objective["metric"]
    for prefix in ("best_", "final_"):
        if metric.startswith(prefix) and len(metric) > len(prefix):
            return metric[len(prefix):]
    return None


def population_size(search: dict) -> int:
    """NSGA-II's generation size: ``population_size``, default n_trials // 4 within [4, 50]."""
    return search.get("population_size", max(4, min(50, search["n_trials"] // 4)))


def search_objectives(search: dict) -> list[dict]:
    """``objectives`` of a search, default: maximise ``best_val_acc``."""
    objectives = search.get("objectives", [{"metric": "best_val_acc", "direction": "maximize"}])
    if not isinstance(objectives, list) or not objectives:
        raise ConfigError(ConfigIssue("search.objectives", f"must be a non-empty list, got {format_value(objectives)}"))
    return [o if isinstance(o, dict) else {"metric": o} for o in objectives]


def search_probe(trial: Any, end: int = 0) -> SweepPoint:
    """A corner of a model-based search's space to validate it: lower bounds and first choices
    (``end`` 0), or upper bounds and last choices (``end`` -1)."""
    check_search(trial.search)
    values = {}
    for key, spec in trial.search["params"].items():
        (kind, args), = spec.items()
        values[key] = args[end]
    return SweepPoint(f"{trial.name}-probe", _settings(trial.settings, values), values)


def expand_trial(trial: Any, root_seed: int) -> list[SweepPoint]:
    """The points of one trials.yaml entry (a plain trial is one point with no values).

    Model-based search (``method: tpe`` or ``nsga2``) is sequential and is driven by the experiment's search
    loop, not expanded here: it yields no points.
    """
    if trial.sweep is not None and trial.search is not None:
        raise ConfigError(ConfigIssue("", "a trial has either sweep: or search:, not both"))
    if trial.sweep is not None:
        return expand_grid(trial.name, trial.sweep, trial.settings)
    if trial.search is not None:
        search = trial.search
        method = search.get("method", "random")
        if method not in SEARCH_METHODS:
            raise ConfigError(ConfigIssue("search.method", f"must be one of {', '.join(SEARCH_METHODS)}, got "
                                          f"{format_value(method)}"))
        if method == "random":
            check_search(search)
            return expand_random(trial.name, search, trial.settings, root_seed)
        return []
    return [SweepPoint(trial.name, dict(trial.settings or {}), {})]
