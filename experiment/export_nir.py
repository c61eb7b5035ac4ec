"""``python main.py export-nir RUN --out FILE``: a trained run's model written as a NIR graph
(HDF5, ``nir.write``), for other simulators and neuromorphic hardware (docs/nir.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from settings.errors import ConfigError, ConfigIssue


def run_folder_of(run: str, db: str | None) -> Path:
    """The run folder ``run`` names: a folder, or a run id looked up in the database."""
    path = Path(run)
    if path.exists() or not run.isdigit():
        return path
    from experiment.store import open_readonly

    store = open_readonly(db)
    try:
        return Path(store.run(int(run)).output_dir)
    except KeyError:
        raise ConfigError(ConfigIssue("", f"no run folder {run} and no run with id {run} in the database", "RUN")) \
            from None
    finally:
        store.close()


def cmd_export_nir(run: str, out: str, checkpoint: str = "best", dt: float | None = None, strict: bool = False,
                   db: str | None = None, stream: TextIO | None = None) -> int:
    """Load the run's checkpoint, convert its model with ``network.interop.to_nir`` and write it
    to ``out``. Everything that cannot be exported is a ConfigError (one ``error:`` line, exit 2)."""
    stream = stream or sys.stdout
    target = Path(out)
    if target.is_dir():
        raise ConfigError(ConfigIssue("", f"must be a file name, got the folder {target}", "--out"))
    if not target.parent.is_dir():
        raise ConfigError(ConfigIssue("", f"the folder {target.parent} does not exist", "--out"))
    if dt is not None and not dt > 0:
        raise ConfigError(ConfigIssue("", f"must be > 0, got {dt}", "--dt"))
    import nir

    from experiment.run_folder import RunFolderError
    from experiment.trained_run import load_trained_run
    from network.interop import NIRExportError, to_nir
    from pipeline.callbacks.checkpoint import CheckpointError

    folder = run_folder_of(run, db)
    try:
        trained = load_trained_run(folder, checkpoint)
    except RunFolderError as exc:
        raise ConfigError(ConfigIssue("", str(exc), "RUN" if exc.argument == "RUN_DIR" else exc.argument)) from None
    except CheckpointError as exc:
        raise ConfigError(ConfigIssue("", str(exc), "--checkpoint")) from None
    try:
        graph = to_nir(trained.model.cpu(), dt=dt, strict=strict)
    except NIRExportError as exc:
        raise ConfigError(ConfigIssue("", str(exc), "RUN")) from None
    nir.write(target, graph)
    meta = graph.metadata["spikelab"]
    print(f"wrote {target}: {len(graph.nodes)} NIR nodes from {folder} (checkpoint {checkpoint}, epoch "
          f"{trained.epoch}), time constants for a step dt = {meta['dt']:g}", file=stream)
    if meta["lossy"]:
        print(f"approximated: {meta['lossy']}", file=stream)
    return 0
