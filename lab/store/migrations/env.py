"""Alembic environment of the platform store.

Used two ways: programmatically by :func:`lab.store.engine.upgrade`, which
passes an open connection in ``config.attributes["connection"]``, and by
developers writing a new revision::

    CREDITLAB_DB_URL=sqlite:///scratch.db .venv/bin/alembic \\
        -c lab/store/migrations/alembic.ini revision --autogenerate -m "what changed"

``render_as_batch`` lets SQLite alter tables (it rebuilds them), so one
migration script serves both backends.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from lab.store.engine import make_engine
from lab.store.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the caller's connection, or over a new one to ``$CREDITLAB_DB_URL``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.begin() as new_connection:
        _run(new_connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them online")
run_migrations_online()
