"""Where a data set read from local files looks for them (specs/datasets.md): its ``data_dir``,
else ``$SPIKELAB_DATA/<name>``, else ``data/raw/<name>`` under the project (git-ignored)."""
from __future__ import annotations

import os
from pathlib import Path

RAW_DIR = Path(__file__).resolve().parent / "raw"


def data_folder(data_dir: str | None, name: str) -> Path:
    """The folder of data set ``name``'s files."""
    if data_dir:
        return Path(data_dir).expanduser()
    root = os.environ.get("SPIKELAB_DATA")
    return (Path(root).expanduser() if root else RAW_DIR) / name


def check_holdout(params: dict, source: str) -> list[tuple[str, str]]:
    """A validation fraction of 1 would leave nothing of ``source`` to train on."""
    if params["val_fraction"] >= 1:
        return [("val_fraction", f"must be < 1 (the rest of {source} trains), got {params['val_fraction']:g}")]
    return []
