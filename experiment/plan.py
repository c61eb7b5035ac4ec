"""The run matrix: trials x sweep points x repeats, with config hashes and seeds.

Everything here is decided before anything runs, and nothing depends on execution order: a
run's seed comes from the root seed through ``numpy.random.SeedSequence``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from settings.names import folder_name
from settings.resolve import ResolvedExperiment, ResolvedTrial


def canonical(value: Any) -> Any:
    """Numbers normalised (1 == 1.0, 1e-3 == 0.001), NaN/inf as strings, tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            return repr(f)
        return f
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON (sorted keys) of a fully resolved config."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_seed(root_seed: int, repeat: int, hash_hex: str, mode: str = "paired") -> int:
    """A 63-bit seed. ``paired``: repeat k gets the same seed in every trial; ``independent``:
    the config hash enters too."""
    key = [root_seed, repeat] if mode == "paired" else [root_seed, repeat, int(hash_hex[:15], 16)]
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] % 2**63)


def safe_name(name: str) -> str:
    """The folder of an experiment or trial name: one folder per name, never outside its parent
    (settings.names.folder_name; validation refused empty names, separators and ``..``)."""
    return folder_name(name)


@dataclass(frozen=True)
class PlannedRun:
    trial: ResolvedTrial
    repeat: int
    seed: int
    config_hash: str
    output_dir: Path

    @property
    def label(self) -> str:
        return f"{self.trial.name}/repeat_{self.repeat}"


def plan_trial(trial: ResolvedTrial, root_seed: int, seeds: str, folder: Path) -> list[PlannedRun]:
    """The repeats of one trial, with seeds and run folders under ``folder``."""
    digest = config_hash(trial.config)
    return [PlannedRun(trial, repeat, run_seed(root_seed, repeat, digest, seeds), digest,
                       folder / safe_name(trial.name) / f"repeat_{repeat}") for repeat in range(trial.repeat)]


def plan_runs(experiment: ResolvedExperiment, folder_name: str | None = None) -> list[PlannedRun]:
    """Every run of the experiment, trials in file order, repeats 0..n-1."""
    settings = experiment.settings
    root = Path(settings.base_dir) / safe_name(folder_name or settings.name)
    return [run for trial in experiment.trials for run in plan_trial(trial, settings.seed, settings.seeds, root)]
