"""The platform API's tables come from an Alembic migration, on SQLite and PostgreSQL.

A fresh store upgraded to head has exactly the ``api_*`` tables of
:mod:`server.platform.tables` and an audit table that refuses UPDATE and
DELETE; a store made by the former ``create_all`` is adopted (stamped, its
triggers reinstalled), not broken.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from lab.store import open_store
from lab.store.testing import BACKENDS, temporary_database, temporary_store
from server.platform.db import API_VERSION_TABLE, Database, install_append_only, migrate
from server.platform.tables import APPEND_ONLY_TABLES, AuditEvent, Base


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with temporary_store(request.param, tmp_path) as store:
        yield store.engine.url.render_as_string(hide_password=False)


def _api_diff(engine: Engine) -> list[object]:
    """Differences between the database's api_* tables and the models (none expected)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "version_table": API_VERSION_TABLE,
            "include_name": lambda name, kind, _parent: kind != "table"
            or name.startswith("api_")})
        return compare_metadata(context, Base.metadata)


def _insert_audit_row(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(AuditEvent.__table__.insert().values(
            at=datetime.now(UTC), request_id="r" * 32, method="GET", route="/v1/x",
            action="test", subjects=[], authorization_ids=[], items=[],
            outcome="served", status_code=200))


def _assert_append_only(engine: Engine) -> None:
    for statement in ("UPDATE api_audit_event SET outcome = 'refused'",
                      "DELETE FROM api_audit_event"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def test_upgrade_creates_the_api_tables_and_the_guard(store_url: str) -> None:
    database = Database(store_url)
    try:
        tables = set(inspect(database.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert API_VERSION_TABLE in tables
        assert _api_diff(database.engine) == []
        _insert_audit_row(database.engine)
        _assert_append_only(database.engine)
        migrate(database.engine)  # a second upgrade is a no-op
        with database.engine.connect() as connection:
            assert connection.execute(text(
                "SELECT count(*) FROM api_audit_event")).scalar_one() == 1
    finally:
        database.dispose()


def test_a_store_made_by_create_all_is_adopted(store_url: str) -> None:
    legacy = Database(store_url, create_tables=False)
    try:
        Base.metadata.create_all(legacy.engine)  # what the platform did before migrations
        with legacy.engine.begin() as connection:
            install_append_only(connection)
        _insert_audit_row(legacy.engine)
        migrate(legacy.engine)
        with legacy.engine.connect() as connection:
            assert MigrationContext.configure(connection, opts={
                "version_table": API_VERSION_TABLE}).get_current_revision() is not None
            assert connection.execute(text(
                "SELECT count(*) FROM api_audit_event")).scalar_one() == 1
        assert _api_diff(legacy.engine) == []
        _assert_append_only(legacy.engine)
    finally:
        legacy.dispose()


def test_the_catalog_store_schema_is_untouched(store_url: str) -> None:
    """The api chain has its own version table: the catalog store's stays at its head."""
    from alembic.script import ScriptDirectory

    from lab.store.engine import alembic_config

    database = Database(store_url)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection)
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head
        assert set(APPEND_ONLY_TABLES) <= set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()


def _open_both(url: str, start: object, results: object) -> None:
    """One server worker's start-up: the catalog store and the api tables, migrated."""
    start.wait(60)  # type: ignore[attr-defined]
    try:
        open_store(url).dispose()
        Database(url).dispose()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}"[:300])  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_workers_starting_together_on_a_new_database_all_start(backend: str,
                                                               tmp_path: Path) -> None:
    """Two uvicorn workers migrate a fresh database at once; before the migration lock one
    of them failed ("table … already exists") in 4 of 10 tries on SQLite."""
    context = multiprocessing.get_context("spawn")
    with temporary_database(backend, tmp_path) as url:
        for _ in range(3):
            start, results = context.Event(), context.Queue()
            workers = [context.Process(target=_open_both, args=(url, start, results))
                       for _ in range(3)]
            for worker in workers:
                worker.start()
            start.set()
            outcomes = [results.get(timeout=120) for _ in workers]
            for worker in workers:
                worker.join(30)
            assert outcomes == ["ok"] * 3
            if backend == "sqlite":  # next round on another new file
                url = f"sqlite:///{tmp_path / f'store-{len(list(tmp_path.iterdir()))}.db'}"
