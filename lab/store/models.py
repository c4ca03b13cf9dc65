"""The platform store's tables, as SQLAlchemy 2 models.

One record table per catalog item, ``rec_<item code>``, whose item columns
are derived from :data:`lab.catalog.CATALOG` (types from :class:`Kind`, the
Chinese header as the column comment), plus the bookkeeping every record
carries: the batch it came in (and so its provider and file), its data date,
its row in the delivered file, and its place in its own history.

Record history, the basis of credit repair (plan: 信用修复)
------------------------------------------------------------
A record is never updated in place and never deleted. Its ``state`` is

* ``current`` — the version that is shown, shared and used for features;
* ``superseded`` — an older version, replaced by a correction (the newer
  row's ``supersedes_id`` points at it) or by the provider re-delivering the
  same key with other values;
* ``withdrawn`` — repaired away (信用修复): from that moment it is not shown,
  shared or used, and it stays here as history.

``disputed`` flags a record under objection (异议); it stays current until
the objection is resolved by a correction or a withdrawal. Every change is
an :class:`AuditEvent` (who, when, why). At most one version per natural key
is current, enforced by a partial unique index.

The Alembic migrations in ``lab/store/migrations`` create exactly these
tables; ``tests/test_store.py`` fails if the two drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from lab.catalog import CATALOG, CatalogField, Item, Kind

__all__ = [
    "AuditEvent",
    "Base",
    "Batch",
    "BatchWarning",
    "FeatureRow",
    "FeatureSnapshot",
    "QuarantinedRow",
    "RECORD_MODELS",
    "RecordBase",
    "STATE_CURRENT",
    "STATE_SUPERSEDED",
    "STATE_WITHDRAWN",
    "record_model",
    "sql_type",
]

STATE_CURRENT = "current"
STATE_SUPERSEDED = "superseded"
STATE_WITHDRAWN = "withdrawn"

#: Constraint names Alembic can find again on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention (stable constraint names for migrations)."""

    metadata = MetaData(naming_convention=NAMING)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Batch(Base):
    """One delivered file: who sent it, what it held, what became of its rows.

    A refused batch (wrong headers, unreadable encoding) is recorded too, with
    ``status = "refused"`` and the reason, so the provider feedback report can
    count it; none of its rows are stored.
    """

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(40))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(16))
    data_date: Mapped[dt.date] = mapped_column(Date)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utc_now)
    ingested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))
    refusal: Mapped[str | None] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_stored: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_superseding: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    rows_normalised: Mapped[int] = mapped_column(Integer, default=0)
    rows_warned: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # Re-ingesting the same file for the same item and provider is a no-op.
        Index(
            "uq_batches_complete_file", "item", "provider", "file_sha256", unique=True,
            sqlite_where=text("status = 'complete'"),
            postgresql_where=text("status = 'complete'"),
        ),
    )


class QuarantinedRow(Base):
    """A delivered row that was not stored, and why: file, row, field, reason.

    ``value_masked`` holds the offending cell masked like any personal value
    (ids and account numbers keep 2 + 2 characters), so the provider can find
    the cell without the quarantine becoming a copy of personal data.
    """

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    item: Mapped[str] = mapped_column(String(40))
    file_name: Mapped[str] = mapped_column(String(255))
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(64))
    header: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    value_masked: Mapped[str | None] = mapped_column(String(80))


class BatchWarning(Base):
    """Rows stored despite a non-fatal oddity, counted per batch, field and reason.

    E.g. a USCC whose embedded GB 11714 organisation code fails its check:
    valid under GB 32100, worth telling the provider, no reason to refuse.
    """

    __tablename__ = "batch_warnings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    first_rows: Mapped[str] = mapped_column(Text)  # JSON list of up to 20 row numbers


class AuditEvent(Base):
    """One change to the store: who did what, when and why (append-only)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utc_now)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    item: Mapped[str | None] = mapped_column(String(40))
    record_id: Mapped[int | None] = mapped_column(Integer)
    new_record_id: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON, never ids or personal values

    __table_args__ = (Index("ix_audit_events_item_record", "item", "record_id"),)


class FeatureSnapshot(Base):
    """One versioned computation of the derived enterprise features as of a date."""

    __tablename__ = "feature_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utc_now)
    created_by: Mapped[str] = mapped_column(String(64))
    definitions_version: Mapped[str] = mapped_column(String(32))
    feature_names: Mapped[str] = mapped_column(Text)  # JSON list, in column order
    n_entities: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class FeatureRow(Base):
    """One enterprise's feature values in one snapshot (JSON object name → number)."""

    __tablename__ = "feature_rows"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("feature_snapshots.id"),
                                             primary_key=True)
    entity_key: Mapped[str] = mapped_column(String(18), primary_key=True)
    values: Mapped[str] = mapped_column(Text)


# --------------------------------------------------------------------------- item records


def sql_type(spec: CatalogField) -> TypeEngine[Any]:
    """The column type a catalog field is stored as (derived, never chosen per table)."""
    kind = spec.kind
    if kind in (Kind.TEXT, Kind.CODE):
        return String(spec.max_length)
    if kind in (Kind.USCC, Kind.ID_NUMBER):
        return String(18)
    if kind in (Kind.ID_TYPE, Kind.ENUM):
        return String(32)
    if kind is Kind.DATE:
        return Date()
    if kind is Kind.PERIOD:
        return String(7)
    if kind is Kind.AMOUNT:
        return Numeric(18, 2, asdecimal=False)
    if kind in (Kind.QUANTITY, Kind.RATE):
        return Float()
    if kind is Kind.COUNT:
        return Integer()
    if kind is Kind.BOOL:
        return Boolean()
    raise ValueError(f"no storage type for kind {kind}")


class RecordBase(Base):
    """Bookkeeping columns shared by every item's record table."""

    __abstract__ = True
    item: ClassVar[Item]

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(Integer)  # batches.id; no FK, bulk loads stay fast
    provider: Mapped[str] = mapped_column(String(40))
    data_date: Mapped[dt.date] = mapped_column(Date)
    source_row: Mapped[int | None] = mapped_column(Integer)  # None for corrections
    entity_key: Mapped[str] = mapped_column(String(18))
    record_key: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(12), default=STATE_CURRENT)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    supersedes_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utc_now)


#: Bookkeeping column names, in table order (item columns follow).
META_COLUMNS: tuple[str, ...] = (
    "id", "batch_id", "provider", "data_date", "source_row", "entity_key", "record_key",
    "content_hash", "version", "state", "disputed", "supersedes_id", "recorded_at",
)


def _record_class(item: Item) -> type[RecordBase]:
    """Build the mapped class of one item's records from its catalog definition."""
    table = item.table_name
    attrs: dict[str, Any] = {
        "__tablename__": table,
        "__doc__": f"Records of catalog item {item.number}, {item.name_zh} ({item.name_en}).",
        "item": item,
        "__table_args__": (
            Index(f"ix_{table}_entity_key", "entity_key"),
            Index(
                f"uq_{table}_current_record_key", "record_key", unique=True,
                sqlite_where=text("state = 'current'"),
                postgresql_where=text("state = 'current'"),
            ),
        ),
    }
    for spec in item.fields:
        attrs[spec.name] = mapped_column(
            spec.name, sql_type(spec), nullable=not spec.required, comment=spec.header
        )
    name = "".join(part.title() for part in item.code.split("_")) + "Record"
    return type(name, (RecordBase,), attrs)


#: Item code → mapped record class.
RECORD_MODELS: dict[str, type[RecordBase]] = {item.code: _record_class(item) for item in CATALOG}


def record_model(item: Item | str) -> type[RecordBase]:
    """The mapped record class of an item (by :class:`Item` or code)."""
    return RECORD_MODELS[item if isinstance(item, str) else item.code]
