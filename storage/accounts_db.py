"""The web app's own database: ``ARCHIVE/web.sqlite3`` (accounts, sessions, API tokens, who ever held a credential
of an account, login failures, the archivists' versioned corrections and the requests waiting for a second admin,
``flows.approvals``, and the access requests with their grants, ``flows.access_requests``).

Unlike the catalog it is not a cache: nothing else holds accounts or corrections, so it is never rebuilt.

With ``SOHOA_DATABASE_URL`` (``postgresql://...``) the same tables live in PostgreSQL, shared by every host; the
SQL is written once, in SQLite's spelling (``storage.db_conn.Connection``). One connection per ``WebDb``, shared
by a process's threads (``storage.db``). Write transactions are serialised as SQLite's ``BEGIN IMMEDIATE``
serialises them: on PostgreSQL each takes one transaction-level advisory lock first, so the checks that count
before they write (login throttling, the last admin, the cap on pending access requests) hold across hosts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.db import Database, is_database_url, open_database
from storage.db_conn import Connection

WEB_DB_FILE = "web.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('staff', 'archivist', 'admin')),
    clearance INTEGER NOT NULL DEFAULT 0 CHECK (clearance BETWEEN 0 AND 3),
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    created_by TEXT,
    password_set_by TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used TEXT,
    created_by TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (ip TEXT NOT NULL, username TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(ip, username, at);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    field TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    username TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edits_doc ON edits(doc_id, id);
CREATE TABLE IF NOT EXISTS approval_requests (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    level INTEGER NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
    decided_by TEXT,
    decided_at TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS approval_requests_open ON approval_requests(state, kind, target);
CREATE TABLE IF NOT EXISTS access_requests (
    id INTEGER PRIMARY KEY,
    requester TEXT NOT NULL,
    requester_clearance INTEGER NOT NULL,
    reference TEXT NOT NULL,
    doc_ref TEXT NOT NULL DEFAULT '',
    purpose TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'granted', 'refused')),
    decided_by TEXT,
    decided_at TEXT,
    doc_id TEXT,
    expires_at TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS access_requests_user ON access_requests(requester, state);
"""

# Columns added after the first release: (table, column, declaration), added to an existing database when missing.
# ``created_by`` / ``password_set_by``: who created the account or token, who last set the password (a username, or
# ``cli:<os user>`` / ``env:...`` for the local operator); NULL: unknown (made before they were recorded).
_ADDED_COLUMNS = (
    ("users", "created_by", "TEXT"),
    ("users", "password_set_by", "TEXT"),
    ("api_tokens", "created_by", "TEXT"),
)

# Who ever held a credential of an account (append-only: a later reset or a self-change removes no one). ``how``:
# ``create`` (chose its first password), ``password`` (set its password), ``token`` (was shown one of its API tokens).
# Created by ``_migrate``, which fills it once from the columns above (what was recorded before it existed).
_HOLDERS_TABLE = """
CREATE TABLE credential_holders (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    at TEXT NOT NULL,
    how TEXT NOT NULL CHECK (how IN ('create', 'password', 'token'))
);
CREATE INDEX credential_holders_user ON credential_holders(user_id, holder);
"""
_HOLDERS_BACKFILL = (
    "INSERT INTO credential_holders(user_id, holder, at, how) "
    "SELECT id, created_by, created_at, 'create' FROM users WHERE created_by IS NOT NULL",
    "INSERT INTO credential_holders(user_id, holder, at, how) "
    "SELECT id, password_set_by, created_at, 'password' FROM users WHERE password_set_by IS NOT NULL",
    "INSERT INTO credential_holders(user_id, holder, at, how) "
    "SELECT user_id, created_by, created_at, 'token' FROM api_tokens WHERE created_by IS NOT NULL",
)


# Tables whose rows get an ``id`` from the database (``lastrowid``; PostgreSQL: ``RETURNING id``).
ID_TABLES = frozenset({"users", "edits", "approval_requests", "access_requests"})
# Every write transaction on PostgreSQL takes this advisory lock first (the ``BEGIN IMMEDIATE`` of SQLite).
WRITE_LOCK_KEY = 0x736F686F61_01  # "sohoa" + 1 (the audit trail uses + 2)


def postgres_ddl(schema: str) -> str:
    """SQLite's DDL of this module in PostgreSQL's spelling: row ids from an identity column, REAL as double, text
    compared byte by byte as SQLite's ``BINARY`` does (ISO times compared as strings, usernames sorted)."""
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', schema.replace(
        "id INTEGER PRIMARY KEY", "id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY").replace(
        " REAL ", " DOUBLE PRECISION "))


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class WebDb:
    """``target``: the SQLite file (``web_db_path``) or a ``postgresql://`` URL."""

    def __init__(self, target: Path | str) -> None:
        self.url = target if isinstance(target, str) and is_database_url(target) else None
        self.path = Path(target) if self.url is None else None
        self.database: Database = open_database(self.url if self.url is not None else Path(target))
        self.dialect = self.database.dialect
        self._conn = Connection(self.database, id_tables=ID_TABLES)
        if self.dialect == "postgres":
            self._create_postgres()
            return
        with self.connect() as conn:
            for statement in statements(_SCHEMA):
                conn.execute(statement)
        self._migrate()

    def _create_postgres(self) -> None:
        """The tables, created once (the advisory lock: two hosts starting at once do not both create them)."""
        with self.transaction() as conn:
            for statement in statements(postgres_ddl(_SCHEMA)):
                conn.execute(statement)
            for statement in statements(postgres_ddl(_HOLDERS_TABLE)):
                conn.execute(statement.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
                             .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS "))

    def _migrate(self) -> None:
        """Add the columns an older SQLite database lacks (``_ADDED_COLUMNS``) and the ``credential_holders``
        history (filled once from those columns), under the write lock so two processes opening it at once do not
        both add them. (A PostgreSQL database is always created whole.)"""
        def missing(conn: Connection) -> list[tuple[str, str, str]]:
            present = {table: {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
                       for table in {t for t, _, _ in _ADDED_COLUMNS}}
            return [(t, c, d) for t, c, d in _ADDED_COLUMNS if c not in present[t]]

        def no_history(conn: Connection) -> bool:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'credential_holders'"
                                ).fetchone() is None

        with self.connect() as conn:
            if not missing(conn) and not no_history(conn):
                return
        with self.transaction() as conn:
            for table, column, declaration in missing(conn):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            if no_history(conn):
                for statement in statements(_HOLDERS_TABLE):
                    conn.execute(statement)
                for statement in _HOLDERS_BACKFILL:
                    conn.execute(statement)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """The connection, each statement committed on its own; use ``transaction`` for several writes."""
        yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (committed at the end, rolled back if the block raises), serialised with every
        other writer of the database, on this host or another."""
        with self.database.transaction():
            if self.dialect == "postgres":
                self.database.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
            yield self._conn

    def close(self) -> None:
        self.database.close()


def web_db_path(archive_root: Path) -> Path:
    return archive_root / WEB_DB_FILE
