"""The database port (storage/db.py) behaves the same on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Database, open_database, to_pyformat
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
