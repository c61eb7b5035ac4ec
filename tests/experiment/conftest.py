"""The store backends the store tests run against: every test that takes ``store_url`` runs once on
a SQLite file and once on a fresh PostgreSQL database, the latter only when the environment variable
``SPIKELAB_TEST_POSTGRES_URL`` names a server (skipped otherwise). Tests marked ``sqlite_only``
(pragmas, file paths, the SQLite lock) run on SQLite alone."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

POSTGRES_ENV = "SPIKELAB_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("store_url", BACKENDS[:1] if sqlite_only else BACKENDS, indirect=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty experiment database (no file, or a new PostgreSQL database without tables)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'spikelab.db'}"
    else:
        yield from _fresh_postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (skipped without ``SPIKELAB_TEST_POSTGRES_URL``)."""
    yield from _fresh_postgres_database()


def _fresh_postgres_database() -> Iterator[str]:
    """A database created on the server of ``SPIKELAB_TEST_POSTGRES_URL`` and dropped afterwards."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (e.g. postgresql+psycopg2://user@/db?host=/tmp) to run")
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"spikelab_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:  # FORCE: ends connections a test left open
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
