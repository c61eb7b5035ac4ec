"""A run folder, ``<base_dir>/<experiment>/<trial>/repeat_<k>/``: the one module that knows its
layout. The runner writes ``config.yaml`` and ``run.json``, the callbacks the rest::

    config.yaml         the resolved trial config the run was built from
    run.json            who the run is (experiment, trial, repeat, seed, config hash)
    metrics.csv         one row per evaluated epoch (CSVLogger)
    log.txt             one line per event of every attempt (RunLog)
    plots/              learning_curves.png, confusion_matrix.png (RunPlots), recordings/ (SpikeRecorder's
                        raster and trace plots), and what analysis draws for the run
    confusion.json      the confusion matrix of the test split at the best checkpoint (RunPlots)
    recordings/         epoch_<k>.npz: spikes and membrane traces of fixed samples (SpikeRecorder;
                        layout and reader in tools.recordings)
    checkpoints/        best.pt and last.pt, epoch_<N>.pt of the epochs kept (ModelCheckpoint)
    tb/                 TensorBoard event files (loggers.tensorboard in experiment.yaml)
    profiler/epoch_<e>/ profiler_output.txt and trace.json.gz of a profiled epoch (loggers.profile)
    wandb/              an offline Weights & Biases run (loggers.wandb)

Everything that reads a run folder (``eval``, the worker's artifact records and resume, analysis
through ``experiment.trained_run``) finds its files here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.recordings import recording_files

CONFIG, RUN_INFO, METRICS, LOG = "config.yaml", "run.json", "metrics.csv", "log.txt"
CONFUSION = "confusion.json"
PLOTS, CHECKPOINTS = "plots", "checkpoints"
TENSORBOARD, PROFILER = "tb", "profiler"
LEARNING_CURVES = "learning_curves.png"
CHECKPOINT_NAMES = ("best", "last")
EPOCH_PREFIX = "epoch:"  # --checkpoint epoch:N: checkpoints/epoch_<N>.pt (ModelCheckpoint keep_every / keep)


class RunFolderError(FileNotFoundError):
    """A folder that is not a run folder, or a checkpoint that is not there; ``argument`` names
    what was given wrong (``RUN_DIR`` or ``--checkpoint``)."""

    def __init__(self, message: str, argument: str):
        super().__init__(message)
        self.argument = argument


class RunFolder:
    """The files of the run folder at ``path`` (nothing is read until asked)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def log(self) -> Path:
        return self.path / LOG

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def profiler(self) -> Path:
        return self.path / PROFILER

    def checkpoint(self, which: str = "best") -> Path:
        """``checkpoints/<which>.pt`` for ``best`` or ``last``, ``checkpoints/epoch_<N>.pt`` for
        ``epoch:N``; any other value is a path."""
        if which.startswith(EPOCH_PREFIX):
            return self.checkpoints / f"epoch_{which[len(EPOCH_PREFIX):]}.pt"
        return self.checkpoints / f"{which}.pt" if which in CHECKPOINT_NAMES else Path(which)

    def epoch_checkpoints(self) -> dict[int, Path]:
        """The kept ``checkpoints/epoch_<N>.pt`` by epoch N, in epoch order."""
        found = {}
        for path in self.checkpoints.glob("epoch_*.pt"):
            number = path.stem[len("epoch_"):]
            if number.isdigit():
                found[int(number)] = path
        return dict(sorted(found.items()))

    def write(self, config: dict, info: dict) -> None:
        """The resolved ``config.yaml`` and ``run.json``, before the run trains."""
        from settings.yaml_io import dump_yaml

        self.path.mkdir(parents=True, exist_ok=True)
        self.config.write_text(dump_yaml(config), encoding="utf-8")
        (self.path / RUN_INFO).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")

    def read_config(self) -> dict[str, Any]:
        """The resolved config the run was built from; RunFolderError without one."""
        from settings.yaml_io import load_yaml

        if not self.config.is_file():
            raise RunFolderError(f"{self.path} is not a run folder (no {CONFIG})", "RUN_DIR")
        return load_yaml(self.config)

    def existing_checkpoint(self, which: str = "best") -> Path:
        """:meth:`checkpoint`, which must exist (RunFolderError otherwise). ``epoch:N`` without its
        own file is best.pt or last.pt when that one was taken after epoch N."""
        if which.startswith(EPOCH_PREFIX):
            return self._epoch_checkpoint(which[len(EPOCH_PREFIX):])
        path = self.checkpoint(which)
        if not path.is_file():
            raise RunFolderError(f"no checkpoint at {path}", "--checkpoint")
        return path

    def _epoch_checkpoint(self, number: str) -> Path:
        if not number.isdigit():
            raise RunFolderError(f"epoch:N needs a whole epoch number N >= 0, got epoch:{number}",
                                 "--checkpoint")
        epoch, kept = int(number), self.epoch_checkpoints()
        if epoch in kept:
            return kept[epoch]
        named = {name: _saved_epoch(self.checkpoint(name)) for name in CHECKPOINT_NAMES}
        for name, saved in named.items():
            if saved == epoch:
                return self.checkpoint(name)
        have = [f"epoch_<N>.pt of epochs {', '.join(map(str, kept))}" if kept else "no epoch_<N>.pt"]
        have += [f"{name}.pt of epoch {saved}" for name, saved in named.items() if saved is not None]
        raise RunFolderError(f"no checkpoint of epoch {epoch} in {self.checkpoints} ({'; '.join(have)}); "
                             "ModelCheckpoint's keep_every and keep choose the epochs kept", "--checkpoint")

    def artifacts(self) -> list[tuple[str, Path]]:
        """(kind, path) of the files a finished run leaves that exist, in a fixed order."""
        files = (("config", self.config), ("metrics", self.path / METRICS), ("log", self.log),
                 ("plot", self.plots / LEARNING_CURVES), ("checkpoint", self.checkpoint("best")),
                 ("checkpoint", self.checkpoint("last")))
        found = [(kind, path) for kind, path in files if path.is_file()]
        found += [("confusion", self.path / CONFUSION)] if (self.path / CONFUSION).is_file() else []
        found += [("recording", path) for path in recording_files(self.path).values()]
        found += [("tensorboard", path) for path in sorted(self.tensorboard.glob("events.out.tfevents.*"))]
        found += [("profile", path) for path in sorted(self.profiler.glob("epoch_*/*"), key=_epoch_order)
                  if path.is_file()]
        return found


def _saved_epoch(path: Path) -> int | None:
    """The epoch the checkpoint ``path`` was taken after; None when it is missing or unreadable."""
    if not path.is_file():
        return None
    from pipeline.callbacks.checkpoint import CheckpointError, load_checkpoint

    try:
        return int(load_checkpoint(path)["epoch"])
    except CheckpointError:
        return None


def _epoch_order(path: Path) -> tuple[int, str]:
    """``profiler/epoch_<e>/<file>`` by epoch, then file name."""
    return int(path.parent.name.rsplit("_", 1)[-1]), path.name
