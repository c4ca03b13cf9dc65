"""The platform store: catalog records, batches, quarantine, audit, feature snapshots.

Open it with :func:`open_store` (SQLite file by default, PostgreSQL through
``CREDITLAB_DB_URL``); the schema is in :mod:`lab.store.models` and its
Alembic migrations in ``lab/store/migrations``.
"""

from lab.store.engine import (
    DEFAULT_DB_URL,
    ENV_DB_URL,
    Store,
    StoreError,
    database_url,
    make_engine,
    open_store,
)

__all__ = [
    "DEFAULT_DB_URL",
    "ENV_DB_URL",
    "Store",
    "StoreError",
    "database_url",
    "make_engine",
    "open_store",
]
