"""Where analysis reads from: a read-only store and one experiment version in it.

Analysis only ever talks to the :class:`~experiment.store.ExperimentStore` interface; a URL (or
a path to a SQLite file) opens a read-only :class:`~experiment.store.SQLStore`, which refuses
every write.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from experiment.store import ExperimentRecord, ExperimentStore, SQLStore
from settings.names import experiment_folder_name
from tools.locations import DEFAULT_BASE_DIR, DEFAULT_DB

#: What every analysis function accepts as ``db``: a SQLAlchemy URL, a SQLite file path, an
#: open store (left open), or None for :data:`DEFAULT_DB`.
DB = Union[str, Path, ExperimentStore, None]

#: What every analysis function accepts as ``experiment``: a name (its latest version unless
#: ``version`` is given) or a record from :meth:`ExperimentStore.get_experiment`.
Experiment = Union[str, ExperimentRecord]


class ExperimentNotFound(LookupError):
    """The store holds no experiment of that name (or version)."""


def _url(db: str | Path) -> str:
    text = str(db)
    return text if "://" in text else f"sqlite:///{text}"


def open_store(db: DB = None) -> ExperimentStore:
    """The store behind ``db``: an open store is returned as it is; a URL (or a SQLite file
    path) is opened read-only; None opens :data:`DEFAULT_DB` read-only."""
    if isinstance(db, ExperimentStore):
        return db
    return SQLStore(_url(DEFAULT_DB if db is None else db), readonly=True)


@contextmanager
def reading(db: DB) -> Iterator[ExperimentStore]:
    """``open_store(db)`` for the duration of a block; closed afterwards only if opened here."""
    store = open_store(db)
    try:
        yield store
    finally:
        if store is not db:
            store.close()


def resolve_experiment(store: ExperimentStore, experiment: Experiment, version: int | None = None) -> ExperimentRecord:
    """The record of ``experiment`` (a record is returned as it is, ``version`` ignored)."""
    if isinstance(experiment, ExperimentRecord):
        return experiment
    found = store.get_experiment(experiment, version)
    if found is None:
        names = sorted({e.name for e in store.list_experiments()})
        which = experiment if version is None else f"{experiment} version {version}"
        raise ExperimentNotFound(f"no experiment {which!r} in {store.url}; "
                                 f"it holds: {', '.join(names) if names else 'no experiments'}")
    return found


def report_folder(record: ExperimentRecord) -> Path:
    """``<base_dir>/<experiment>[_v<version>]/report``: beside the experiment's run folders."""
    base = (record.files or {}).get("experiment", {}).get("base_dir") or DEFAULT_BASE_DIR
    return Path(base) / experiment_folder_name(record.name, record.version) / "report"
