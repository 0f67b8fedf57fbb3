"""Where the audit trail's tables live: the SQLite file ``ARCHIVE/audit.sqlite3`` (the embedded default, opened
exactly as before) or, with ``SOHOA_DATABASE_URL``, a PostgreSQL database shared by every host (``storage.db``).

Appends are serialised on both: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's transaction-level advisory lock
``AUDIT_LOCK_KEY`` taken before the head is read, so appenders on several hosts extend one chain, one at a time.
Text is compared byte by byte on both (``COLLATE "C"`` on PostgreSQL, as SQLite's ``BINARY``): ``entries``'
time filters compare ISO strings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.db import Dialect, PostgresDatabase
from storage.sqlite_tx import use_wal

AUDIT_LOCK_KEY = 0x736F686F61_02  # "sohoa" + 2 (the web database's write lock is + 1)
_TABLES_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
}


class TrailDb:
    """One connection to the trail's tables: ``execute`` with SQLite's spelling and ``?`` on both backends."""

    def __init__(self, path: Path, database: str | None, *, create: bool) -> None:
        self.dialect: Dialect = "postgres" if database else "sqlite"
        self._pg: PostgresDatabase | None = None
        self._sqlite: sqlite3.Connection | None = None
        if database:
            self._pg = PostgresDatabase(database)
        else:
            self._sqlite = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            if create:
                use_wal(self._sqlite)
                self._sqlite.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, args: Sequence[object] = ()) -> Any:
        if self._pg is not None:
            return self._pg.execute(sql, args)
        assert self._sqlite is not None
        return self._sqlite.execute(sql, tuple(args))

    def create(self, schema: str) -> None:
        """The tables and indexes of ``schema`` where missing (on PostgreSQL under the append lock: two hosts
        opening a new trail at once do not both create them)."""
        if self.dialect == "postgres":
            schema = schema.replace(" TEXT NOT NULL", ' TEXT COLLATE "C" NOT NULL')
        with self.write():
            for statement in (s.strip() for s in schema.split(";")):
                if statement:
                    self.execute(statement)

    def tables(self) -> set[str]:
        return {str(row[0]) for row in self.execute(_TABLES_SQL[self.dialect]).fetchall()}

    @property
    def order_of_insertion(self) -> str:
        """How ``verify`` reads the chain: SQLite's rowid (the order rows were written), PostgreSQL's ``seq``."""
        return "rowid" if self.dialect == "sqlite" else "seq"

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction, serialised with every other appender of the trail."""
        if self._pg is not None:
            with self._pg.transaction():
                self._pg.execute("SELECT pg_advisory_xact_lock(?)", (AUDIT_LOCK_KEY,))
                yield
            return
        assert self._sqlite is not None
        self._sqlite.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._sqlite.execute("ROLLBACK")
            raise
        self._sqlite.execute("COMMIT")

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()

