"""A connection-like view of a ``storage.db.Database``, for stores whose callers write their own SQL (the web
database, ``storage.accounts_db``): ``execute(sql, args)`` with SQLite's spelling and ``?`` placeholders, a result
with ``fetchone`` / ``fetchall`` / iteration / ``rowcount`` / ``lastrowid``, on SQLite and on PostgreSQL alike.

* Rows are read whole while the database's lock is held, so a result can be used after another thread ran
  a statement on the same connection.
* ``lastrowid`` on PostgreSQL: an ``INSERT INTO t`` of a table named in ``id_tables`` gets ``RETURNING id``.
* Either driver's error comes out as ``storage.db.IntegrityError`` / ``storage.db.DatabaseError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from storage.db import Database, Dialect, neutral_errors

_INSERT_INTO = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)


class Result:
    """The rows of one statement, already fetched."""

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Connection:
    """SQL in SQLite's spelling over ``database``; each statement commits on its own unless the caller runs it
    inside ``database.transaction()``."""

    def __init__(self, database: Database, *, id_tables: frozenset[str] = frozenset()) -> None:
        self.database = database
        self.id_tables = id_tables

    @property
    def dialect(self) -> Dialect:
        return self.database.dialect

    def _lock(self) -> AbstractContextManager[Any]:
        lock = getattr(self.database, "lock", None)
        return lock if lock is not None else nullcontext()

    def execute(self, sql: str, args: Sequence[object] = ()) -> Result:
        returning = False
        if self.dialect == "postgres":
            match = _INSERT_INTO.match(sql)
            if match and match.group(1).lower() in self.id_tables and "RETURNING" not in sql.upper():
                sql, returning = sql.rstrip().rstrip(";") + " RETURNING id", True
        with self._lock(), neutral_errors():
            cursor = self.database.execute(sql, args)
            rows = list(cursor.fetchall()) if getattr(cursor, "description", None) is not None else []
            rowcount = cursor.rowcount
            lastrowid = getattr(cursor, "lastrowid", None) if self.dialect == "sqlite" else None
        if returning:
            lastrowid = int(rows[0][0]) if rows else None
            rows = []
        return Result(rows, rowcount, lastrowid)
