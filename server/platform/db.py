"""The platform API's database: engine, sessions, and the append-only guarantee.

Why the guarantee lives in the database and not only in code: an audit log
that the application *chooses* not to change is a promise; one the database
refuses to change is a fact a reviewer can check. On SQLite each append-only
table gets ``BEFORE UPDATE`` / ``BEFORE DELETE`` triggers that abort; on
PostgreSQL a trigger function raises. The ORM also refuses to flush an
update or delete of those rows, so the mistake is caught before the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from lab.store.engine import migrating
from server.platform.tables import APPEND_ONLY_TABLES, AuditEvent, DataUse

__all__ = ["API_VERSION_TABLE", "AppendOnlyError", "Database", "install_append_only", "migrate"]

#: Alembic's revision table of the api chain (the catalog store's is ``alembic_version``).
API_VERSION_TABLE = "api_alembic_version"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class AppendOnlyError(RuntimeError):
    """Code tried to change or delete an audit record."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    """WAL and a busy timeout: readers never block the audit writer, writers wait, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the api tables behind ``engine`` to ``revision`` (a no-op when current).

    The api tables have their own Alembic chain (``server/platform/migrations``)
    beside the catalog store's, so each can change without the other's checks
    seeing foreign tables. A store whose api tables were made by the former
    ``create_all`` is adopted by the first revision (see its docstring).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with migrating(engine) as connection:  # one process at a time (several workers start)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def install_append_only(connection: Connection) -> None:
    """Create the triggers that make :data:`APPEND_ONLY_TABLES` refuse UPDATE and DELETE.

    The migrations install the same triggers (with a frozen copy of this SQL);
    this stays for code that builds tables from the models directly (tests).
    """
    dialect = connection.dialect.name
    for table in APPEND_ONLY_TABLES:
        if dialect == "sqlite":
            for op in ("UPDATE", "DELETE"):
                connection.execute(text(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"))
        elif dialect == "postgresql":
            connection.execute(text(
                "CREATE OR REPLACE FUNCTION creditlab_append_only() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; "
                "END $$ LANGUAGE plpgsql"))
            connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
            connection.execute(text(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION creditlab_append_only()"))
        else:
            raise AppendOnlyError(
                f"no append-only guard for the {dialect!r} database; use SQLite or PostgreSQL")


def _refuse_changes(session: Session, _context, _instances) -> None:  # noqa: ANN001
    """ORM guard: no flush may update or delete an audit row."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent | DataUse) and (
                obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError(
                f"{type(obj).__tablename__} is append-only; record a new event instead")


class Database:
    """Engine and session factory of one platform database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///creditlab.db``, ``postgresql+psycopg://…``).
    create_tables : bool
        Migrate the API tables (and their append-only triggers) to the newest
        revision; False for a database someone else keeps migrated.
    """

    def __init__(self, url: str, *, create_tables: bool = True) -> None:
        self.url = url
        remote = not url.startswith("sqlite")
        # Requests interleave on the event loop, each holding its session across the
        # awaits between its dependencies: size the pool so they never queue for one.
        self.engine: Engine = create_engine(url, pool_pre_ping=remote, pool_size=10,
                                            max_overflow=40)
        # The audit writer runs on the event loop, one write at a time. It has its own
        # one-connection engine: if it shared the routes' pool it could wait on the
        # event loop for a connection held by a route that waits on the event loop.
        self.audit_engine: Engine = create_engine(url, pool_pre_ping=remote, pool_size=1,
                                                  max_overflow=0)
        for engine in (self.engine, self.audit_engine):
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "before_flush", _refuse_changes)
        if create_tables:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close pooled connections (tests and shutdown)."""
        self.engine.dispose()
        self.audit_engine.dispose()
