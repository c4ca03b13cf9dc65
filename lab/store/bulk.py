"""Bulk loading of many rows into one table, the fast way each backend offers.

Row-by-row ORM inserts cost ~50 µs a row; a provider's monthly electricity
file has a million rows. So ingestion hands whole columns here:

* SQLite — one prepared ``INSERT`` through the driver's ``executemany``,
  inside the caller's transaction (WAL, ``synchronous=NORMAL``);
* PostgreSQL — ``COPY … FROM STDIN`` through psycopg 3, whose C row writer
  formats the values (no text round trip through Python).

Values must already be what the column stores: ``str`` for text and for
ISO dates (``YYYY-MM-DD``), ``int``, ``float``, ``bool`` or ``None``.

Why ``constants``: on SQLite the cost of ``executemany`` is Python's
``sqlite3`` binding each value, not storage — measured on the 1M-row
electricity load (36 columns): 5.8 s of a 7.3 s ``executemany`` remained
when the same rows were bound to an ``INSERT … SELECT … WHERE 0`` that
stores nothing, about 0.16 µs per value. A million-row batch would bind its
batch id, provider, state, timestamp and empty columns a million times each;
written once into the statement as SQL literals instead, they cost nothing
per row. PostgreSQL's COPY has no such cost, so there they are simply
repeated on every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["bulk_insert", "sqlite_literal"]


def sqlite_literal(value: object) -> str:
    """``value`` as an SQLite literal, stored exactly as the bound parameter would be.

    Only the types a literal renders without loss: ``None``, ``bool`` (as
    SQLite stores it, 0/1), ``int`` and ``str`` (quotes doubled). Floats are
    refused: their text form would round-trip through SQLite's own parser.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL character cannot be written as an SQLite literal")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQLite literal for {type(value).__name__}; bind it per row")


def bulk_insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    count: int,
    *,
    constants: Mapping[str, object] | None = None,
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order, ``count`` of them) into ``table``.

    ``rows`` may be an iterator (e.g. ``zip`` over columns), so a million
    rows are never materialised as a list. ``constants`` are further columns
    with the same value on every row (``None``, ``bool``, ``int`` or ``str``),
    given once rather than per row (see the module docstring). Runs inside
    the transaction ``connection`` is in, so a failure later in the same
    ingestion rolls these rows back too. Returns ``count``.
    """
    if count == 0:
        return 0
    fixed = dict(constants or {})
    dialect = connection.dialect.name
    dbapi = connection.connection  # the pooled DBAPI connection of this transaction
    names = ", ".join(f'"{name}"' for name in [*columns, *fixed])
    if dialect == "sqlite":
        values = ["?"] * len(columns) + [sqlite_literal(value) for value in fixed.values()]
        statement = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(values)})'
    elif dialect == "postgresql":
        statement = f'COPY "{table}" ({names}) FROM STDIN'
    else:
        raise ValueError(f"no bulk loader for {dialect!r}")
    cursor = dbapi.cursor()
    try:
        if dialect == "sqlite":
            cursor.executemany(statement, rows)
        else:
            with cursor.copy(statement) as copy:
                for row in _with_tail(rows, tuple(fixed.values())):
                    copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as exc:
        # The same exception classes as SQLAlchemy raises elsewhere (IntegrityError, …).
        raise DBAPIError.instance(statement, None, exc, connection.dialect.loaded_dbapi.Error
                                  ) from exc
    finally:
        cursor.close()
    return count


def _with_tail(rows: Iterable[Sequence[Any]], tail: tuple[object, ...]
               ) -> Iterable[Sequence[Any]]:
    """Each row followed by the constant values (COPY takes whole rows)."""
    if not tail:
        return rows
    return _appended(rows, tail)


def _appended(rows: Iterable[Sequence[Any]], tail: tuple[object, ...]
              ) -> Iterator[tuple[object, ...]]:
    for row in rows:
        yield (*row, *tail)
