"""Alembic environment of the experiment database.

Normally driven by :func:`experiment.store.migrate.upgrade`, which hands over an open connection
(``config.attributes["connection"]``) so the SQLite rules of the store apply to migrations too.
Without one, the engine is built from the ``sqlalchemy.url`` option.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from experiment.store.engine import make_engine
from experiment.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as connection:
            run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
