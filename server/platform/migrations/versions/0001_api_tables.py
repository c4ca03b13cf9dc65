"""The platform API's tables and the append-only guard of its audit tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-03 22:30:00

Idempotent on purpose: before this migration existed the platform made these
tables with ``create_all`` and installed the triggers itself. Such a store has
the tables but no revision, so each table is created only if it is missing
and the triggers are (re)installed with ``IF NOT EXISTS`` / ``OR REPLACE``;
the upgrade then stamps the store, and later revisions run as usual. The
schema is spelled out here (not taken from ``server.platform.tables``) so this
revision keeps meaning what it meant when later ones change the models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("api_audit_event", "api_data_use")


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _institution() -> None:
    op.create_table(
        "api_institution",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.Enum("bank", "provider", "operator", name="role",
                                  native_enum=False, length=16), nullable=False),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_institution"),
        sa.UniqueConstraint("name", name="uq_api_institution_name"),
    )


def _key() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("institution_id", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=True),
        sa.Column("revoked_at", _tz(), nullable=True),
        sa.Column("replaced_by", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["institution_id"], ["api_institution.id"],
                                name="fk_api_key_institution_id_api_institution"),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
    )
    op.create_index("ix_api_key_institution_id", "api_key", ["institution_id"])


def _authorization() -> None:
    op.create_table(
        "api_authorization",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("institution_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("scoring", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.String(200), nullable=False),
        sa.Column("granted_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
        sa.Column("revoked_at", _tz(), nullable=True),
        sa.Column("revoked_reason", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["api_institution.id"],
                                name="fk_api_authorization_created_by_api_institution"),
        sa.ForeignKeyConstraint(["institution_id"], ["api_institution.id"],
                                name="fk_api_authorization_institution_id_api_institution"),
        sa.PrimaryKeyConstraint("id", name="pk_api_authorization"),
    )
    op.create_index("ix_api_authorization_lookup", "api_authorization",
                    ["institution_id", "subject_id"])


def _audit_event() -> None:
    op.create_table(
        "api_audit_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("institution_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=True),
        sa.Column("authorization_ids", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_audit_event"),
        sa.UniqueConstraint("request_id", name="uq_api_audit_event_request_id"),
    )
    op.create_index("ix_api_audit_event_at", "api_audit_event", ["at"])
    op.create_index("ix_api_audit_event_institution_id", "api_audit_event", ["institution_id"])


def _data_use() -> None:
    op.create_table(
        "api_data_use",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("institution_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=True),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["api_audit_event.id"],
                                name="fk_api_data_use_audit_id_api_audit_event"),
        sa.PrimaryKeyConstraint("id", name="pk_api_data_use"),
    )
    op.create_index("ix_api_data_use_audit_id", "api_data_use", ["audit_id"])
    op.create_index("ix_api_data_use_provider", "api_data_use", ["provider"])


#: In dependency order (foreign keys point backwards).
TABLES: dict[str, Callable[[], None]] = {
    "api_institution": _institution, "api_key": _key, "api_authorization": _authorization,
    "api_audit_event": _audit_event, "api_data_use": _data_use}


def _append_only(dialect: str) -> None:
    """The database itself refuses UPDATE and DELETE (and TRUNCATE) of the audit tables."""
    if dialect == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION creditlab_append_only() RETURNS trigger AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; "
                   "END $$ LANGUAGE plpgsql")
    for table in APPEND_ONLY:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE "
                           f"{verb} ON {table} BEGIN SELECT RAISE(ABORT, "
                           f"'{table} is append-only: {verb} refused'); END")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR "
                       f"TRUNCATE ON {table} FOR EACH STATEMENT "
                       "EXECUTE FUNCTION creditlab_append_only()")
        else:
            raise RuntimeError(f"no append-only guard for the {dialect!r} database; "
                               "use SQLite or PostgreSQL")


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for name, create in TABLES.items():
        if name not in existing:  # a store made by create_all has them already
            create()
    _append_only(bind.dialect.name)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    for name in reversed(TABLES):
        op.drop_table(name)  # drops its indexes and (SQLite) its triggers with it
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS creditlab_append_only()")
