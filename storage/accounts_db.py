"""The web app's own database: ``ARCHIVE/web.sqlite3`` (accounts, sessions, API tokens, who ever held a credential
of an account, login failures, the archivists' versioned corrections and the requests waiting for a second admin,
``flows.approvals``, and the access requests with their grants, ``flows.access_requests``).

Unlike the catalog it is not a cache: nothing else holds accounts or corrections, so it is never rebuilt.
One short connection per operation (requests run in a thread pool); WAL lets readers and one writer overlap.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


class WebDb:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns an older database lacks (``_ADDED_COLUMNS``) and the ``credential_holders`` history
        (filled once from those columns), under the write lock so two processes opening it at once do not both
        add them."""
        def missing(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            present = {table: {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
                       for table in {t for t, _, _ in _ADDED_COLUMNS}}
            return [(t, c, d) for t, c, d in _ADDED_COLUMNS if c not in present[t]]

        def no_history(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'credential_holders'"
                                ).fetchone() is None

        with self.connect() as conn:
            if not missing(conn) and not no_history(conn):
                return
        with self.transaction() as conn:
            for table, column, declaration in missing(conn):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            if no_history(conn):
                for statement in _HOLDERS_TABLE.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                for statement in _HOLDERS_BACKFILL:
                    conn.execute(statement)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode; use ``transaction`` for several writes."""
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def web_db_path(archive_root: Path) -> Path:
    return archive_root / WEB_DB_FILE
