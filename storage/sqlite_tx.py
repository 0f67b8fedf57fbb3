"""One SQLite write transaction, shared by the catalog and the embedded search index."""

from __future__ import annotations

import sqlite3
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
