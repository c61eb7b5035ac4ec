"""Execute one planned run: write its folder, build the pipeline, fit."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from experiment.run_folder import RunFolder
from pipeline import TrainingPipeline
from pipeline.callbacks import CSVLogger, ModelCheckpoint, ProgressBar
from pipeline.callbacks.base import Callback
from pipeline.training import FitResult
from settings.registries import PIPELINES
from settings.schema import build
from tools.devices import set_threads


def build_pipeline(config: dict) -> TrainingPipeline:
    """The pipeline of a resolved trial config (its ``env`` sets the thread count; a stage's
    ``stage`` block is the experiment's business, not the pipeline's)."""
    spec = {k: v for k, v in config.items() if k not in ("env", "stage")}
    if config.get("env", {}).get("threads"):
        set_threads(config["env"]["threads"])
    return build(spec, PIPELINES)


def default_callbacks(pipeline: TrainingPipeline, progress: bool) -> list[Callback]:
    """CSVLogger and ModelCheckpoint unless the config lists its own, plus a ProgressBar."""
    have = {type(cb) for cb in pipeline.callbacks}
    extra: list[Callback] = []
    if CSVLogger not in have:
        extra.append(CSVLogger())
    if ModelCheckpoint not in have:
        extra.append(ModelCheckpoint())
    if progress and ProgressBar not in have:
        extra.append(ProgressBar())
    return extra


def execute_run(config: dict, seed: int, output_dir: Path, info: dict, callbacks: Sequence[Callback] = (),
                resume: Path | dict | None = None, progress: bool = True) -> FitResult:
    """Write the run folder (resolved config.yaml, run.json), then train with the default callbacks."""
    RunFolder(output_dir).write(config, info)
    pipeline = build_pipeline(config)
    all_callbacks = default_callbacks(pipeline, progress) + list(callbacks)
    return pipeline.fit(seed, output_dir, all_callbacks, resume=resume)
