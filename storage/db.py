"""One small database port over SQLite (the embedded default) and PostgreSQL (``SOHOA_DATABASE_URL``).

The stores that several hosts must share (catalog, batch registry and work queue, accounts and corrections, audit
trail) write their SQL once, in SQLite's spelling with ``?`` placeholders, and run it through a ``Database``:

    db = open_database("postgresql://sohoa@db:5432/sohoa")      # or open_database(Path("archive/catalog.sqlite"))
    with db.transaction():                                       # BEGIN IMMEDIATE / BEGIN … COMMIT, ROLLBACK on error
        db.execute("INSERT INTO t (a, b) VALUES (?, ?)", (1, "x"))
    rows = db.execute("SELECT a FROM t WHERE b = ?", ("x",)).fetchall()

``Database.dialect`` tells the few places that differ (DDL, upserts, ``RETURNING``, ``FOR UPDATE SKIP LOCKED``)
which spelling to use. Both implementations hold one connection guarded by a re-entrant lock, so a store object is
safe to share between threads of one process, as the SQLite stores always were; processes and hosts are kept apart
by the database itself (SQLite's file lock, PostgreSQL's row locks).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from schemas.errors import ConfigError
from storage.sqlite_tx import use_wal

Dialect = Literal["sqlite", "postgres"]


class Rows(Protocol):
    """What ``execute`` returns: a DB-API cursor (both drivers' cursors satisfy this)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    dialect: Dialect

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    def transaction(self) -> Any:
        """A context manager: one write transaction, committed on exit, rolled back if the block raises.

        Re-entrant: a transaction opened inside another joins it (only the outermost commits)."""
        ...

    def close(self) -> None: ...


def is_database_url(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def open_database(target: Path | str) -> Database:
    """A PostgreSQL database for a ``postgresql://`` URL, else the SQLite file at the path ``target``."""
    if isinstance(target, str) and is_database_url(target):
        return PostgresDatabase(target)
    return SqliteDatabase(Path(target))


class _Nestable(Protocol):
    lock: threading.RLock
    _depth: int

    def outermost(self) -> AbstractContextManager[None]: ...


@contextmanager
def nested(db: _Nestable) -> Iterator[None]:
    """``db.outermost()`` (BEGIN … COMMIT, ROLLBACK on error) under the connection's lock; a transaction opened
    inside it joins it (only the outermost commits)."""
    with db.lock:
        db._depth += 1
        try:
            if db._depth > 1:
                yield
                return
            with db.outermost():
                yield
        finally:
            db._depth -= 1


class SqliteDatabase:
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._depth = 0
        with self.lock:
            use_wal(self.conn)  # readers never wait for a writer
            self.conn.execute("PRAGMA foreign_keys=ON")

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows:
        with self.lock:
            return self.conn.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.lock:
            self.conn.executemany(sql, [tuple(r) for r in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with nested(self):
            yield

    @contextmanager
    def outermost(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"])*\"|\?|%")


def to_pyformat(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s``; a literal ``%`` doubled (psycopg reads ``%`` everywhere)."""
    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")
    return _QUOTED_OR_MARK.sub(swap, sql)


_PASSWORDS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:([^/?#]*)@|[?&]password=([^&#]*)")


def redact_password(text: str, url: str) -> str:
    """``text`` (a driver's or a tool's message about ``url``) with the URL's password, as written and as decoded,
    replaced by ``***``, whatever libpq made of the URL (it quotes the password, or the whole URL, it cannot parse)."""
    from urllib.parse import unquote

    hidden = {part for found in _PASSWORDS.finditer(url) for part in found.groups() if part}
    for secret in sorted(hidden | {unquote(p) for p in hidden}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class PostgresDatabase:
    dialect: Dialect = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg  # only when a PostgreSQL URL is configured

        self.url = url
        self.lock = threading.RLock()
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:  # libpq quotes a URL it cannot parse, password included: never shown
            said = redact_password(str(exc), url)
            raise ConfigError(f"Không kết nối được cơ sở dữ liệu PostgreSQL dùng chung: {said}",
                              fix="kiểm tra SOHOA_DATABASE_URL (máy, cổng, tên CSDL, người dùng, mật khẩu; ký tự % "
                                  "viết là %25) và máy chủ PostgreSQL") from None
        self._depth = 0

    def execute(self, sql: str, args: Sequence[object] = ()) -> Rows:
        with self.lock:
            return self.conn.execute(to_pyformat(sql), tuple(args))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.lock, self.conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), [tuple(r) for r in rows])  # type: ignore[arg-type]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with nested(self):
            yield

    @contextmanager
    def outermost(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class DatabaseError(Exception):
    """Either driver's error (``sqlite3.Error``, ``psycopg.Error``) as one class: see ``neutral_errors``."""


class IntegrityError(DatabaseError):
    """A constraint was violated (a duplicate key, a failed CHECK or foreign key), on either backend."""


def driver_errors() -> tuple[type[Exception], ...]:
    """The base error classes of the drivers in use (psycopg's only once it was imported), for ``except``."""
    import sys

    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


@contextmanager
def neutral_errors() -> Iterator[None]:
    """Either driver's errors raised in the block as ``IntegrityError`` / ``DatabaseError`` (the cause kept)."""
    try:
        yield
    except driver_errors() as exc:
        integrity = isinstance(exc, sqlite3.IntegrityError) or str(getattr(exc, "sqlstate", "") or "").startswith("23")
        raise (IntegrityError if integrity else DatabaseError)(str(exc)) from exc
