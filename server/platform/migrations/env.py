"""Alembic environment of the platform API's own tables (``api_*``).

Why a chain of its own next to the catalog store's (``lab/store/migrations``):
both live in one database, but the catalog store's migrations are checked
against the catalog models alone (``tests/test_store.py`` compares the
database with ``lab.store.models``), and the api tables change for other
reasons and on another schedule. So this chain keeps its revision in its own
version table, :data:`server.platform.db.API_VERSION_TABLE`, and looks only
at tables named ``api_*``.

Run by :func:`server.platform.db.migrate` over an open connection passed in
``config.attributes["connection"]``. To write a new revision::

    .venv/bin/alembic -c server/platform/migrations/alembic.ini revision -m "what changed"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from server.platform.db import API_VERSION_TABLE
from server.platform.tables import Base

config = context.config


def _ours(name: str | None, kind: str, _parent: object) -> bool:
    """Only the api tables (the catalog tables belong to the other chain)."""
    return kind != "table" or bool(name and name.startswith("api_"))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      version_table=API_VERSION_TABLE, include_name=_ours,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the caller's connection (there is no other way in)."""
    connection = config.attributes.get("connection")
    if connection is None:
        raise SystemExit("run the platform migrations through server.platform.db.migrate")
    _run(connection)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them online")
run_migrations_online()
