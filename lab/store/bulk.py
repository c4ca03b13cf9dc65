"""Bulk loading of many rows into one table, the fast way each backend offers.

Row-by-row ORM inserts cost ~50 µs a row; a provider's monthly electricity
file has a million rows. So ingestion hands whole columns here:

* SQLite — one prepared ``INSERT`` through the driver's ``executemany``,
  inside the caller's transaction (WAL, ``synchronous=NORMAL``);
* PostgreSQL — ``COPY … FROM STDIN`` through psycopg 3, whose C row writer
  formats the values (no text round trip through Python).

Values must already be what the column stores: ``str`` for text and for
ISO dates (``YYYY-MM-DD``), ``int``, ``float``, ``bool`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

__all__ = ["bulk_insert"]

def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def bulk_insert(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; return the row count.

    Runs inside the transaction ``connection`` is in, so a failure later in
    the same ingestion rolls these rows back too.
    """
    if not rows:
        return 0
    dialect = connection.dialect.name
    dbapi = connection.connection  # the pooled DBAPI connection of this transaction
    if dialect == "sqlite":
        placeholders = ", ".join("?" for _ in columns)
        cursor = dbapi.cursor()
        try:
            cursor.executemany(
                f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES ({placeholders})', rows
            )
        finally:
            cursor.close()
        return len(rows)
    if dialect == "postgresql":
        cursor = dbapi.cursor()
        try:
            with cursor.copy(f'COPY "{table}" ({_quoted(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return len(rows)
    raise ValueError(f"no bulk loader for {dialect!r}")
