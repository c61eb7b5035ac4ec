"""Where Spikelab writes when experiment.yaml does not say: the results root and the experiment
database in it. The one place for these defaults (the CLI's ``--db``, the read commands,
analysis and ``ExperimentSettings`` all take them from here)."""
from __future__ import annotations

from pathlib import Path

DEFAULT_BASE_DIR = "outputs"
DB_FILE = "spikelab.db"


def database_url(base_dir: str | Path) -> str:
    """The SQLite URL of the experiment database under ``base_dir``."""
    return f"sqlite:///{Path(base_dir) / DB_FILE}"


DEFAULT_DB = database_url(DEFAULT_BASE_DIR)
