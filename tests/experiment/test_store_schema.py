"""Schema versions (Alembic, on every store backend), the SQLite connection rules, the environment capsule,
param flattening."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from experiment.store import (DatabaseNotFound, SchemaOutdated, SQLStore, current_revision, environment_capsule,
                              flatten, head_revision, param_rows, upgrade)
from experiment.store.capsule import git_state
from experiment.store.engine import READ_OPTION, is_sqlite, make_engine, sqlite_path
from experiment.store.models import Base
from testkit import execute_sql

UPGRADE = "python main.py db upgrade --db"


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


# -- Alembic ------------------------------------------------------------------------------------
def test_upgrade_creates_schema_at_head(url: str) -> None:
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision() == "0003"
    upgrade(url)  # idempotent
    SQLStore(url).close()


@pytest.mark.sqlite_only
def test_upgrade_creates_the_folder_and_file(url: str) -> None:
    upgrade(url)
    assert sqlite_path(url).is_file()


def test_migrations_match_models(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.sqlite_only
def test_row_tables_are_without_rowid(url: str) -> None:
    upgrade(url)
    tables = dict(execute_sql(url, "SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    assert all(tables[name].rstrip().endswith("WITHOUT ROWID") for name in ("metric", "summary", "param"))


def test_database_without_schema_is_refused_with_the_upgrade_command(url: str) -> None:
    if is_sqlite(url):  # an empty file (a fresh PostgreSQL database is empty already)
        sqlite_path(url).parent.mkdir(parents=True)
        sqlite3.connect(sqlite_path(url)).close()
    with pytest.raises(SchemaOutdated, match="has no schema revision") as info:
        SQLStore(url)
    assert f"{UPGRADE} {url}" in str(info.value)


def test_database_at_an_older_revision_is_refused(url: str) -> None:
    upgrade(url)
    execute_sql(url, "DELETE FROM alembic_version")  # what `alembic stamp base` does
    with pytest.raises(SchemaOutdated, match=UPGRADE):
        SQLStore(url)
    execute_sql(url, "INSERT INTO alembic_version VALUES ('ffff')")  # a revision from newer code
    with pytest.raises(SchemaOutdated, match="does not know"):
        SQLStore(url)


@pytest.mark.sqlite_only
def test_missing_database_is_not_created_by_a_worker(url: str) -> None:
    with pytest.raises(DatabaseNotFound, match=UPGRADE):
        SQLStore(url)
    assert not sqlite_path(url).exists() and not sqlite_path(url).parent.exists()


# -- SQLite connection rules --------------------------------------------------------------------
@pytest.mark.sqlite_only
def test_pragmas_are_set_on_every_connection(url: str) -> None:
    SQLStore.create(url).close()
    store = SQLStore(url)
    # three pooled connections open at once, each in a read transaction (a write one would wait for the others)
    connections = [store._engine.connect().execution_options(**{READ_OPTION: True}) for _ in range(3)]
    try:
        for conn in connections:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") >= 30_000
            assert pragma("synchronous") == 1  # NORMAL
    finally:
        for conn in connections:
            conn.close()
        store.close()


@pytest.mark.sqlite_only
def test_write_transactions_take_the_lock_at_begin(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    other = sqlite3.connect(sqlite_path(url), timeout=0, isolation_level=None)
    try:
        with engine.connect().execution_options(**{READ_OPTION: True}) as reader, reader.begin():
            other.execute("BEGIN IMMEDIATE")  # a read transaction leaves the write lock free
            other.execute("ROLLBACK")
        with engine.begin():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Exception, match="FOREIGN KEY"), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO trial (experiment_id, name, config, config_hash) "
                                 "VALUES (999, 'x', '{}', 'h')")
    finally:
        other.close()
        engine.dispose()


# -- capsule and params -------------------------------------------------------------------------
def test_environment_capsule() -> None:
    capsule = environment_capsule()
    assert set(capsule) == {"git_sha", "git_dirty", "python", "packages", "host", "cpu", "cpu_count", "platform"}
    assert "sqlalchemy" in capsule["packages"] and capsule["python"].count(".") == 2
    assert capsule["git_sha"] is None or len(capsule["git_sha"]) == 40


def test_capsule_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert git_state(tmp_path) == (None, None)  # not a repository
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert environment_capsule()["git_sha"] is None


def test_flatten_paths_and_kinds() -> None:
    config = {"a": {"b": [{"c": 1}, [True, None]]}, "s": "x", "e": [], "d": {}, "f": float("nan")}
    assert dict(flatten(config)) == {"a.b[0].c": 1, "a.b[1][0]": True, "a.b[1][1]": None, "s": "x", "e": [],
                                     "d": {}, "f": config["f"]}
    rows = {row.key: row for row in param_rows(config)}
    assert (rows["a.b[0].c"].kind, rows["a.b[0].c"].num_value) == ("number", 1.0)
    assert (rows["a.b[1][0]"].kind, rows["a.b[1][0]"].num_value) == ("bool", 1.0)
    assert rows["a.b[1][1]"].kind == "null" and rows["s"].text_value == "x"
    assert (rows["e"].kind, rows["e"].text_value, rows["d"].text_value) == ("json", "[]", "{}")
    assert (rows["f"].kind, rows["f"].num_value) == ("number", None)
