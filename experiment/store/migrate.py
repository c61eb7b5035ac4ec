"""Schema versions of the experiment database (Alembic), applied by the parent process only.

``upgrade(url)`` creates or migrates the schema; workers only check it (``check_schema``) and
fail with the exact command to run when the database is behind this code.
"""
from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine

from experiment.store.engine import BUSY_TIMEOUT_MS, READ_OPTION, is_sqlite, make_engine, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaOutdated(RuntimeError):
    """The database schema is not at this code's head revision."""


class DatabaseNotFound(FileNotFoundError):
    """The SQLite file of a store opened without ``create`` does not exist."""


class NotADatabase(ValueError):
    """The file behind a SQLite URL exists but is not a SQLite database."""


def upgrade_command(url: str) -> str:
    return f"python main.py db upgrade --db {url}"


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini); ``connection`` is handed to env.py."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration of this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions())


def _revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect().execution_options(**{READ_OPTION: True}) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is stamped with (None: no schema yet)."""
    if is_sqlite(url) and not sqlite_path(url).exists():
        return None
    require_sqlite_format(url)
    engine = make_engine(url, readonly=is_sqlite(url))
    try:
        return _revision(engine)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Create or migrate the schema at ``url`` (SQLite: the file and its folder are created).
    Raises SchemaOutdated, touching nothing, when the database is at a revision this code does
    not know (written by a newer Spikelab)."""
    from alembic import command

    current = current_revision(url)
    if current is not None and current not in known_revisions():
        raise SchemaOutdated(_unknown_revision(url, current))
    if is_sqlite(url):
        sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), revision)
    finally:
        engine.dispose()


def check_schema(engine: Engine, url: str) -> None:
    """Raise SchemaOutdated unless the database behind ``engine`` is at the head revision."""
    current, head = _revision(engine), head_revision()
    if current == head:
        return
    if current is not None and current not in known_revisions():
        raise SchemaOutdated(_unknown_revision(url, current))
    state = "has no schema revision" if current is None else f"is at revision {current}"
    raise SchemaOutdated(f"database {url} {state}, this code needs revision {head}; "
                         f"upgrade it with: {upgrade_command(url)}")


def _unknown_revision(url: str, current: str) -> str:
    return (f"database {url} is at revision {current}, which this code does not know "
            f"(newer than {head_revision()}?): update Spikelab")


def require_file(url: str) -> None:
    """Raise DatabaseNotFound if ``url`` is a SQLite file that does not exist, NotADatabase if
    it is some other kind of file."""
    if is_sqlite(url) and not sqlite_path(url).exists():
        raise DatabaseNotFound(f"no experiment database at {sqlite_path(url)}; "
                               f"create it with: {upgrade_command(url)}")
    require_sqlite_format(url)


def require_sqlite_format(url: str) -> None:
    """Raise NotADatabase if ``url`` names an existing file (or folder) that is not a SQLite
    database; an empty file is a valid, empty database.

    The file is asked through SQLite itself, never opened with Python's ``open()``: closing any
    descriptor of a database file drops every POSIX lock this process holds on it (including
    those of its live SQLite connections), after which another process may checkpoint and
    delete the WAL under them ("disk I/O error", lost commits, a malformed database). SQLite
    keeps its descriptors open while any connection of the process holds a lock."""
    if not is_sqlite(url):
        return
    path = sqlite_path(url)
    if path.is_dir():
        raise NotADatabase(f"db {url}: {path} is a folder, not a SQLite database file")
    if not path.is_file() or path.stat().st_size == 0:
        return
    connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB or "not a database" in str(exc):
            raise NotADatabase(f"db {url}: {path} is not a SQLite database") from None
        raise
    finally:
        connection.close()
