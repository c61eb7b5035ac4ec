"""Engines for the experiment database, with the SQLite rules applied to every connection.

SQLite: WAL journal, ``busy_timeout`` 60 s, foreign keys on, ``synchronous=NORMAL``; pysqlite's
own transaction handling is switched off (``isolation_level=None``) and every transaction is
begun by us: ``BEGIN IMMEDIATE`` (the write lock is taken up front, so concurrent writers queue
on ``busy_timeout`` instead of failing) unless the connection carries the ``spikelab_read``
execution option, which begins a deferred read transaction. PostgreSQL gets a plain engine (its
transactions lock rows, not the database); a read-only one runs every transaction ``READ ONLY``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.sql import ClauseElement

BUSY_TIMEOUT_MS = 60_000

#: Execution option that marks a connection as read-only: plain (deferred) BEGIN.
READ_OPTION = "spikelab_read"


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path:
    """The database file of a SQLite URL; in-memory databases are refused (workers need a file)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(f"db URL must name a SQLite file (sqlite:///path/to/file.db), got {url}")
    return Path(database)


def absolute_url(url: str) -> str:
    """A SQLite file URL with its path made absolute (the same file whatever the working directory
    of the process that opens it); other URLs unchanged."""
    if not is_sqlite(url):
        return url
    parsed = make_url(url)
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return url
    return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)


def _on_connect(readonly: bool) -> Any:
    def on_connect(dbapi_connection: sqlite3.Connection, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            if readonly:
                cursor.execute("PRAGMA query_only=ON")
            else:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return on_connect


def _on_begin(connection: Connection) -> None:
    """Emits BEGIN on the driver's cursor: the statement needs none of SQLAlchemy's execution
    machinery, and skipping it halves the fixed cost of a small transaction."""
    read = connection.get_execution_options().get(READ_OPTION, False)
    cursor = connection.connection.cursor()
    try:
        cursor.execute("BEGIN" if read else "BEGIN IMMEDIATE")
    finally:
        cursor.close()


def make_engine(url: str, readonly: bool = False) -> Engine:
    """An engine for ``url``; read-only SQLite engines open the file with ``mode=ro``, read-only
    PostgreSQL engines begin ``READ ONLY`` transactions."""
    if not is_sqlite(url):
        postgres_readonly = readonly and make_url(url).get_backend_name() == "postgresql"
        return create_engine(url, pool_pre_ping=True,
                             execution_options={"postgresql_readonly": True} if postgres_readonly else {})
    path = sqlite_path(url)
    kwargs: dict[str, Any] = {}
    if readonly:
        uri = path.resolve().as_uri() + "?mode=ro"
        kwargs["creator"] = lambda: sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                                    check_same_thread=False)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _on_connect(readonly))
    event.listen(engine, "begin", _on_begin)
    return engine


class DriverStatement:
    """A statement compiled once to the driver's SQL and parameter style, for executing it on
    the DBAPI cursor (the metric hot path) without SQLAlchemy's per-call work."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, names: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql, self.names = str(compiled), names
        self.order = [names.index(n) for n in compiled.positiontup] if compiled.positional else None
        self.as_is = self.order == list(range(len(names)))

    def params(self, values: tuple[Any, ...]) -> tuple[Any, ...] | dict[str, Any]:
        """Values in ``names`` order, arranged the way the driver wants them."""
        if self.as_is:
            return values
        if self.order is None:
            return dict(zip(self.names, values))
        return tuple(values[i] for i in self.order)
