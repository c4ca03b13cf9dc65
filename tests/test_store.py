"""The platform store (lab.store): migrations match the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from lab.catalog import CATALOG
from lab.store import Store, StoreError, make_engine, open_store
from lab.store.bulk import bulk_insert, sqlite_literal
from lab.store.engine import alembic_config
from lab.store.models import Base, Batch, record_model
from lab.store.testing import BACKENDS, temporary_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with temporary_store(request.param, tmp_path) as opened:
        yield opened


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head
    tables = set(inspect(store.engine).get_table_names())
    assert {item.table_name for item in CATALOG} <= tables
    assert {"batches", "quarantine", "batch_warnings", "audit_events", "feature_snapshots",
            "feature_rows"} <= tables


def test_opening_again_is_a_no_op(store: Store) -> None:
    again = open_store(store.engine.url.render_as_string(hide_password=False))
    with again.engine.connect() as connection:
        assert connection.execute(text("select count(*) from batches")).scalar() == 0
    again.dispose()


def _batch(store: Store) -> int:
    with store.session() as session:
        batch = Batch(item="electricity", provider="state_grid_tianjin", file_name="f.csv",
                      file_sha256="0" * 64, file_format="csv", encoding="utf-8",
                      data_date=dt.date(2025, 6, 30), ingested_by="test", status="complete")
        session.add(batch)
        session.flush()
        return batch.id


def test_bulk_insert_round_trips_types_and_one_current_version_per_key(store: Store) -> None:
    batch_id = _batch(store)
    model = record_model("electricity")
    columns = ["enterprise_name", "uscc", "grid_account_no", "stat_date", "in_arrears_now",
               "arrears_amount", "violations_2y", "batch_id", "provider", "data_date",
               "entity_key", "record_key", "content_hash", "version", "state", "disputed",
               "recorded_at"]
    stamp = dt.datetime(2025, 7, 15, 9, tzinfo=dt.UTC)
    bound = (stamp.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
             if store.dialect == "sqlite" else stamp)
    row = ("某公司", "914403001922038216", "120000000001", "2025-06-30", True, 12.5, 2,
           batch_id, "state_grid_tianjin", "2025-06-30", "914403001922038216",
           "120000000001|2025-06-30", -(2**63) + 5, 1, "current", False, bound)
    with store.engine.begin() as connection:
        assert bulk_insert(connection, model.__tablename__, columns, iter([row]), 1) == 1
    with store.session() as session:
        stored = session.scalars(select(model)).one()
        assert stored.stat_date == dt.date(2025, 6, 30)
        assert stored.in_arrears_now is True
        assert stored.arrears_amount == pytest.approx(12.5)
        assert stored.violations_2y == 2
        assert stored.content_hash == -(2**63) + 5
        assert stored.address is None
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        bulk_insert(connection, model.__tablename__, columns, [row], 1)


def test_bulk_insert_constants_are_stored_as_if_bound_per_row(store: Store) -> None:
    """Constant columns (given once, as SQL literals on SQLite) read back like bound values."""
    batch_id = _batch(store)
    model = record_model("electricity")
    columns = ["uscc", "grid_account_no", "stat_date", "data_date", "entity_key", "record_key",
               "content_hash"]
    rows = [("914403001922038216", f"12000000000{i}", "2025-06-30", "2025-06-30",
             "914403001922038216",
             f"12000000000{i}|2025-06-30", i) for i in range(3)]
    stamp = dt.datetime(2025, 7, 15, 9, tzinfo=dt.UTC)
    constants = {"enterprise_name": "某公司", "batch_id": batch_id, "provider": "o'grid",
                 "state": "current", "version": 1,
                 "disputed": True, "in_arrears_now": False, "supersedes_id": None,
                 "address": None,
                 "recorded_at": (stamp.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
                                 if store.dialect == "sqlite" else stamp)}
    with store.engine.begin() as connection:
        assert bulk_insert(connection, model.__tablename__, columns, iter(rows), 3,
                           constants=constants) == 3
    with store.session() as session:
        stored = session.scalars(select(model).order_by(model.content_hash)).all()
    assert [r.grid_account_no for r in stored] == ["120000000000", "120000000001",
                                                   "120000000002"]
    for record in stored:
        assert (record.batch_id, record.provider, record.state, record.version) == (
            batch_id, "o'grid", "current", 1)
        assert record.disputed is True and record.in_arrears_now is False
        assert record.supersedes_id is None and record.address is None
        assert record.recorded_at.replace(tzinfo=None) == stamp.replace(tzinfo=None)


def test_sqlite_literal_refuses_what_it_cannot_write_exactly() -> None:
    assert sqlite_literal("it's") == "'it''s'"
    assert (sqlite_literal(None), sqlite_literal(True), sqlite_literal(-7)) == ("NULL", "1", "-7")
    with pytest.raises(TypeError, match="bind it per row"):
        sqlite_literal(0.1)
    with pytest.raises(ValueError, match="NUL"):
        sqlite_literal("a\x00b")


def test_engine_refuses_other_backends_with_a_remedy() -> None:
    with pytest.raises(StoreError, match="SQLite and PostgreSQL"):
        make_engine("mysql://x@localhost/db")
    assert make_engine("postgresql://u@127.0.0.1/db").dialect.driver == "psycopg"


def test_default_store_is_a_sqlite_file_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITLAB_DB_URL", raising=False)
    store = open_store()
    assert store.dialect == "sqlite"
    assert (tmp_path / "creditlab.db").is_file()
    store.dispose()
    monkeypatch.setenv("CREDITLAB_DB_URL", f"sqlite:///{tmp_path / 'other.db'}")
    open_store().dispose()
    assert (tmp_path / "other.db").is_file()
