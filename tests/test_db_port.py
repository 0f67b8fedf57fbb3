"""The database port (storage/db.py) behaves the same on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Database, open_database, to_pyformat
from storage.sqlite_tx import use_wal
from tests.tools.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = open_database(tmp_path / "t.sqlite")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        database = open_database(server.create_database(f"port_{tmp_path.name[-20:].lower()}"))
    database.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
    try:
        yield database
    finally:
        database.close()


def test_placeholders_and_percent_signs_mean_the_same(db: Database) -> None:
    db.execute("INSERT INTO t (a, b) VALUES (?, ?)", (1, "50% xong? có"))
    db.execute("INSERT INTO t (a, b) VALUES (?, '?%')", (2,))
    assert db.execute("SELECT b FROM t WHERE b LIKE '%xong%' AND a = ?", (1,)).fetchall() == [("50% xong? có",)]
    assert db.execute("SELECT b FROM t WHERE a = ?", (2,)).fetchone() == ("?%",)


def test_a_transaction_commits_or_rolls_back_whole(db: Database) -> None:
    with db.transaction():
        db.execute("INSERT INTO t (a, b) VALUES (?, ?)", (1, "x"))
        with db.transaction():  # joins the outer one
            db.execute("INSERT INTO t (a, b) VALUES (?, ?)", (2, "y"))
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO t (a, b) VALUES (?, ?)", (3, "z"))
        raise RuntimeError("stop")
    assert [r[0] for r in db.execute("SELECT a FROM t ORDER BY a").fetchall()] == [1, 2]
    db.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(4, "p"), (5, "q")])
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 4


def test_to_pyformat_leaves_quoted_question_marks() -> None:
    assert to_pyformat("SELECT '?', \"a?\" FROM t WHERE x = ? AND y LIKE 'a%'") == \
        "SELECT '?', \"a?\" FROM t WHERE x = %s AND y LIKE 'a%%'"


def test_switching_a_new_file_to_wal_waits_for_a_concurrent_opener(tmp_path: Path) -> None:
    """SQLite refuses a journal switch at once ("database is locked", no busy wait) while another connection holds
    the new file; several workers starting on a new archive hit that: ``use_wal`` waits for it instead."""
    path = tmp_path / "new.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        opener.execute("PRAGMA journal_mode=WAL")  # what a plain switch does (the failure use_wal answers)
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        use_wal(opener)
    finally:
        release.join()
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    opener.close()
