"""Throwaway stores for tests, on SQLite and on PostgreSQL.

The store must behave the same on both backends (issue 3), so store tests
are parametrised over :data:`BACKENDS`. SQLite needs nothing; PostgreSQL
needs a server whose URL is in ``$CREDITLAB_TEST_PG_URL`` (``.ci/run`` starts
one with ``.ci/start-postgres.sh``). Without it the PostgreSQL variants are
skipped with the reason, unless ``$CREDITLAB_REQUIRE_PG`` is set (as CI
does), in which case they fail: CI must not pass by skipping them.

Each PostgreSQL store is a fresh database created for the test and dropped
after it, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lab.store.engine import Store, open_store

__all__ = ["BACKENDS", "ENV_REQUIRE_PG", "ENV_TEST_PG_URL", "postgres_url",
           "temporary_database", "temporary_store"]

ENV_TEST_PG_URL = "CREDITLAB_TEST_PG_URL"
ENV_REQUIRE_PG = "CREDITLAB_REQUIRE_PG"
BACKENDS = ("sqlite", "postgresql")


def postgres_url() -> str:
    """The test server's URL, or skip (fail under ``$CREDITLAB_REQUIRE_PG``) without one."""
    import pytest

    url = os.environ.get(ENV_TEST_PG_URL)
    if url:
        return url
    message = (f"PostgreSQL variant needs ${ENV_TEST_PG_URL}; start a server with "
               f'`export {ENV_TEST_PG_URL}="$(.ci/start-postgres.sh)"`')
    if os.environ.get(ENV_REQUIRE_PG):
        pytest.fail(message + f" (${ENV_REQUIRE_PG} is set, so it may not be skipped)")
    pytest.skip(message)
    raise AssertionError("unreachable")  # pytest.skip raises


@contextmanager
def temporary_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty (unmigrated) database on ``backend``; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'store.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    base = make_url(postgres_url())
    name = f"creditlab_t_{secrets.token_hex(6)}"
    admin = create_engine(base.set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def temporary_store(backend: str, folder: Path) -> Iterator[Store]:
    """A new, migrated, empty store on ``backend``; removed afterwards (PostgreSQL)."""
    with temporary_database(backend, folder) as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.dispose()
