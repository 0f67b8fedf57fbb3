"""The match sets of the most common words, stored in the embedded index (storage/search_sqlite/wordsets.py).

A rebuild stores them and a merge (the end of a digitisation run) extends them; a process that has never read a
word from FTS5 counts its facets from the stored set plus the documents written since, and the counts stay
exactly what a recount gives, at every clearance, through additions, updates, deletions and rebuilds. ``MIN_CACHED``
is lowered: the tests' words are in tens of documents, not tens of thousands.
"""

from __future__ import annotations

import random
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.search import IndexEntry, SearchFilters, SearchRequest
from storage.search_sqlite import SqliteSearchIndex, compact, termsets
from storage.search_sqlite.facets import FacetColumns
from tests.test_facets import check, make_entry


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[object]]]:
    """Words in 20 documents or more are common; every match set read from FTS5 by a search is recorded."""
    monkeypatch.setattr(termsets, "MIN_CACHED", 20)
    seen: list[tuple[str, list[object]]] = []
    real = termsets.matched_docids

    def spy(conn: sqlite3.Connection, sql: str, args: list[object]) -> object:
        seen.append((sql, list(args)))
        return real(conn, sql, args)

    monkeypatch.setattr(termsets, "matched_docids", spy)
    return seen


def fresh_process(monkeypatch: pytest.MonkeyPatch, *indexes: SqliteSearchIndex) -> None:
    """Forget every kept set and column store, as a process that starts does (``indexes`` take the new ones)."""
    monkeypatch.setattr(FacetColumns, "_registry", OrderedDict())
    for index in indexes:
        index._columns = FacetColumns.for_file(index.path)


def stored(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {str(w): int(s) for w, s in conn.execute("SELECT word, seen FROM search_wordsets")}
    finally:
        conn.close()


def docs_of(rng: random.Random, prefix: str, n: int) -> dict[str, IndexEntry]:
    return {f"{prefix}{i}": make_entry(rng, f"{prefix}{i}") for i in range(n)}


@pytest.fixture
def rebuilt(tmp_path: Path, reads: list[tuple[str, list[object]]]
            ) -> Iterator[tuple[SqliteSearchIndex, dict[str, IndexEntry]]]:
    rng = random.Random(5)
    docs = docs_of(rng, "d", 120)
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    yield index, docs
    index.close()


def test_a_rebuild_stores_the_common_words_and_a_new_process_counts_from_them(
        rebuilt: tuple[SqliteSearchIndex, dict[str, IndexEntry]], reads: list[tuple[str, list[object]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    index, docs = rebuilt
    sets = stored(index.path)
    assert {"zabor", "van", "ket"} <= set(sets)  # in most documents / in every one ("VĂN BẢN … kết thúc")
    fresh_process(monkeypatch, index)
    reads.clear()
    check(index, docs)
    check(index, docs, SearchFilters(classification=["Tối mật"], year_from=2001))
    zabor = [args for sql, args in reads if args and args[0] == '"zabor"']
    assert zabor == [], "zabor's set is read from the index, not from FTS5"


def test_stored_sets_count_exactly_through_writes_deletes_merges_and_rebuilds(
        rebuilt: tuple[SqliteSearchIndex, dict[str, IndexEntry]], reads: list[tuple[str, list[object]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    index, docs = rebuilt
    rng = random.Random(8)
    seen_before = stored(index.path)["zabor"]
    for step in range(3):
        added = docs_of(rng, f"s{step}-", 10)
        docs.update(added)
        index.upsert(list(added.values()))
        gone = [sorted(docs)[-1], *rng.sample(sorted(docs), 3)]
        index.delete(list(dict.fromkeys(gone)))
        for doc_id in gone:
            docs.pop(doc_id, None)
        fresh_process(monkeypatch, index)
        reads.clear()
        check(index, docs)
        # only the documents written since the set was stored are read from FTS5
        assert [args[1] for sql, args in reads if args and args[0] == '"zabor"'] == [seen_before]
    compact(index._conn, index._lock)
    seen_after = stored(index.path)["zabor"]
    assert seen_after > seen_before
    fresh_process(monkeypatch, index)
    reads.clear()
    check(index, docs)
    assert [args for sql, args in reads if args and args[0] == '"zabor"'] == []
    docs = docs_of(rng, "r", 40)
    index.replace_all(iter(docs.values()))
    assert stored(index.path)["zabor"] > seen_after  # read again in the new generation
    fresh_process(monkeypatch, index)
    check(index, docs)


def test_a_set_stored_with_more_deletions_than_a_snapshot_saw_is_not_used(
        rebuilt: tuple[SqliteSearchIndex, dict[str, IndexEntry]], reads: list[tuple[str, list[object]]]) -> None:
    index, docs = rebuilt
    conn = sqlite3.connect(index.path)
    try:
        conn.execute("UPDATE search_wordsets SET deleted = deleted + 1")
        conn.commit()
    finally:
        conn.close()
    reads.clear()
    check(index, docs)
    assert [args[1] for sql, args in reads if args and args[0] == '"zabor"'] == [0]  # read whole from FTS5


def test_a_small_archive_stores_no_set(tmp_path: Path) -> None:
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs_of(random.Random(2), "d", 50).values()))  # MIN_CACHED: 20,000 documents
    assert stored(index.path) == {}
    index.close()


def test_stored_sets_never_count_a_hidden_document(tmp_path: Path, reads: list[tuple[str, list[object]]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored sets hold documents of every level: at clearance c a new process counts from them exactly what
    an index holding only the documents of level <= c counts, and names no classification above c."""
    rng = random.Random(55)
    docs = docs_of(rng, "d", 120)
    assert any(e.secrecy_level > 0 and "zabor" in e.text for e in docs.values())
    index = SqliteSearchIndex(tmp_path / "all.sqlite")
    index.replace_all(iter(docs.values()))
    assert "zabor" in stored(index.path)
    try:
        for clearance in range(3):
            fresh_process(monkeypatch, index)
            reads.clear()
            visible = SqliteSearchIndex(tmp_path / f"open{clearance}.sqlite")
            visible.upsert([e for e in docs.values() if e.secrecy_level <= clearance])
            queries = ("zabor", "zabor quilto", "van", "")
            seen = {}
            for query in queries:
                for _ in range(2):  # the first request in a process counts in SQL, the second on the columns
                    seen[query] = index.search(SearchRequest(query=query, clearance=clearance, facets=True, limit=0))
            assert not [args for sql, args in reads if args and args[0] == '"zabor"'], clearance  # the stored set
            for query in queries:
                alone = visible.search(SearchRequest(query=query, clearance=3, facets=True, limit=0))
                assert (seen[query].total, seen[query].facets) == (alone.total, alone.facets), (query, clearance)
            visible.close()
    finally:
        index.close()
