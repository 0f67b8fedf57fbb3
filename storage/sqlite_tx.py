"""SQLite helpers shared by the database port, the catalog, the audit trail and the embedded search index: one write
transaction, and switching a file to write-ahead logging."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


def write_transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any],
                      action: Callable[[], object]) -> None:
    """``action`` in one write transaction (``BEGIN IMMEDIATE``) under ``lock``, rolled back if it raises."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            action()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def use_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``. Switching a new file's journal needs it to itself for a moment, and SQLite
    answers "database is locked" at once (no busy wait) while another connection opening the same file at the same
    time holds it; several processes or threads starting on a new archive do that: try again for ``wait_s``."""
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
