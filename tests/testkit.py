"""Helpers shared by tests: small experiment folders, raw SQL on an experiment database."""
from __future__ import annotations

from pathlib import Path


def write_experiment(folder: Path, config: str, trials: str = "- name: base\n", env: str = "",
                     experiment: str = "") -> Path:
    """Write the four YAML files of an experiment into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config)
    (folder / "trials.yaml").write_text(trials)
    if env:
        (folder / "env.yaml").write_text(env)
    if experiment:
        (folder / "experiment.yaml").write_text(experiment)
    return folder


TINY_CONFIG = """\
data: {type: Digits, val_fraction: 0.2, test_fraction: 0.2}
encoder: {type: RateEncoder, gain: 0.5}
model:
  layers:
    - {type: Dense, out_features: 16, kernel: {type: LIFKernel, tau_m: 10.0}}
  readout: {type: LeakyIntegrator, out_features: 10, tau: 10.0}
loss: CrossEntropyLoss
optimizer: {type: Adam, lr: 0.01}
epochs: 2
batch_size: 64
"""


def make_pipeline(config: str | dict, env: dict | None = None, **settings):
    """A TrainingPipeline from YAML text (or a dict), validated like ``main.py run`` does."""
    from settings.registries import PIPELINES
    from settings.resolve import resolve_config
    from settings.schema import build
    from settings.yaml_io import parse_yaml

    raw = parse_yaml(config) if isinstance(config, str) else config
    resolved = resolve_config(raw, env or {}, settings)
    resolved.pop("env")
    return build(resolved, PIPELINES)


TEMPOTRON_CONFIG = """\
data: {type: RandomDataset, size: 40, input_size: 100}
encoder: {type: LatencyEncoder, T: 200}
model:
  layers:
    - {type: Dense, out_features: 1, kernel: DENKernel, weight_init: {type: Normal, mean: 0.0, std: 0.01}}
  readout: MaxMembrane
loss: BinaryLoss
learning_rule: SingleSpikeLR
optimizer: {type: MomentumOptimizer, lr: 0.01, momentum: 0.9}
epochs: 3
batch_size: 10
"""


def execute_sql(url: str, statement: str, **params) -> list[tuple]:
    """Run one SQL statement (``:name`` parameters) on the database at ``url`` outside the store, in its
    own committed transaction; the rows it returns, if any."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def wait_for_epoch(db_file: Path, epoch: int, timeout_s: float = 120.0) -> None:
    """Poll the SQLite file ``db_file`` (another process writes it) until a metric row of ``epoch``
    or later exists, or ``timeout_s`` passes; a missing or locked file is waited for."""
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not db_file.exists():
            continue
        try:
            with sqlite3.connect(db_file) as con:
                if con.execute("SELECT COALESCE(MAX(epoch), -1) FROM metric").fetchone()[0] >= epoch:
                    return
        except sqlite3.OperationalError:
            pass


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell starts background
    jobs with SIGINT ignored, and a child inherits that, so a test suite run from such a job
    (``nohup ... &``, some CI runners) would send Ctrl-C to a process that ignores it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
