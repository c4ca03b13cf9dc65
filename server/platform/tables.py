"""Storage models of the platform API's own tables (SQLAlchemy 2).

Kept apart from the catalog store (``lab.store``) and from the pydantic
schemas of the wire (:mod:`server.platform.schemas`), as in the FastAPI
full-stack template: what is stored and what is sent change for different
reasons. All tables are prefixed ``api_`` so they sit beside the catalog
tables in the one platform database without a clash.

- :class:`Institution` — a bank, a data provider or the platform's operator.
- :class:`ApiKey` — an institution's key, stored as a peppered digest only.
- :class:`Authorization` — a subject's consent for one institution, one
  purpose, some catalog items, until a date; revocable.
- :class:`AuditEvent` and :class:`DataUse` — the append-only access record
  (every request, refused ones included) and, per served request, which
  catalog items (hence which providers' data) it used. Both refuse UPDATE
  and DELETE in the database itself (see :mod:`server.platform.db`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "APPEND_ONLY_TABLES",
    "ApiKey",
    "AuditEvent",
    "Authorization",
    "Base",
    "DataUse",
    "Institution",
    "Role",
]


class Role(enum.StrEnum):
    """What an institution may do: banks query and score, providers read their
    usage, the operator administers institutions, keys and authorizations."""

    bank = "bank"
    provider = "provider"
    operator = "operator"


class Base(DeclarativeBase):
    """Declarative base with its own metadata, so the catalog store's is untouched."""

    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite stores no offset and hands back naive datetimes; comparing those
    with ``datetime.now(UTC)`` would raise. Values are stored as UTC and come
    back aware, so expiry checks are the same code on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_TZ = UTCDateTime()


class Institution(Base):
    """A financial institution, a data provider or the operator."""

    __tablename__ = "api_institution"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    """For role provider: the provider's name as in the catalog (e.g. ``市医保局``)."""
    created_at: Mapped[datetime] = mapped_column(_TZ)


class ApiKey(Base):
    """One API key. ``digest`` = HMAC-SHA256(pepper, secret); the secret is never stored.

    The key the client holds reads ``clk_<id>_<secret>``: the id finds the row
    without a scan, the digest proves the secret. Keys are 256-bit random, so
    a fast keyed hash is enough (a slow password hash protects guessable
    secrets; these are not guessable), and it keeps authentication off the
    latency budget.
    """

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("api_institution.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TZ)
    expires_at: Mapped[datetime | None] = mapped_column(_TZ, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(_TZ, default=None)
    replaced_by: Mapped[str | None] = mapped_column(String(16), default=None)


class Authorization(Base):
    """A subject's authorization of one institution for one purpose.

    ``items`` lists the catalog items (1..10) whose sensitive fields may be
    shown unmasked, and item 2 (arrears) at all; ``scoring`` allows the
    platform to compute its partial score of the subject for that institution.
    ``evidence`` references the signed consent kept by the operator.
    """

    __tablename__ = "api_authorization"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(18))
    institution_id: Mapped[str] = mapped_column(ForeignKey("api_institution.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    items: Mapped[list[int]] = mapped_column(JSON)
    scoring: Mapped[bool] = mapped_column(Boolean, default=False)
    evidence: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(_TZ)
    expires_at: Mapped[datetime] = mapped_column(_TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(_TZ, default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by: Mapped[str] = mapped_column(ForeignKey("api_institution.id"))

    __table_args__ = (Index("ix_api_authorization_lookup", "institution_id", "subject_id"),)


class AuditEvent(Base):
    """One request to ``/v1``, whatever its outcome. Append-only.

    ``subjects`` holds the normalised ids the request was about: the audit
    record exists so that a subject can learn who looked at its data, which
    needs the id (this is a protected table, not a log file).
    """

    __tablename__ = "api_audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(_TZ, index=True)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    institution_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    key_id: Mapped[str | None] = mapped_column(String(16), default=None)
    role: Mapped[str | None] = mapped_column(String(16), default=None)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    subjects: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str | None] = mapped_column(String(32), default=None)
    authorization_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    items: Mapped[list[int]] = mapped_column(JSON, default=list)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(40), default=None)


class DataUse(Base):
    """Which catalog item a served request used, for the providers' usage feedback.

    One row per (audit event, item); ``masked`` says whether the sensitive
    fields were hidden. Append-only like the audit events it points to.
    """

    __tablename__ = "api_data_use"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("api_audit_event.id"), index=True)
    at: Mapped[datetime] = mapped_column(_TZ)
    item: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(100), index=True)
    institution_id: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str | None] = mapped_column(String(32), default=None)
    masked: Mapped[bool] = mapped_column(Boolean)


#: Tables that refuse UPDATE and DELETE at the database level.
APPEND_ONLY_TABLES: tuple[str, ...] = (AuditEvent.__tablename__, DataUse.__tablename__)
