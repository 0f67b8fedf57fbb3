"""Outside review of the kept match sets (``storage/search_sqlite/termsets.py``): attacks that held are listed in
the review report; what broke is pinned here."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from schemas.search import IndexEntry, SearchRequest
from tests.test_facets import LEVELS, make_entry


def _entry(doc_id: str, text: str, classification: str | None = None) -> IndexEntry:
    e = make_entry(random.Random(doc_id), doc_id)
    return e.model_copy(update={"text": f"VĂN BẢN {text} kết thúc.", "secrecy_level": LEVELS[classification],
                                "metadata": {**e.metadata, "classification": classification}})


def test_a_catalog_restored_in_place_does_not_count_a_hidden_document_through_kept_sets(tmp_path: Path) -> None:
    """A catalog file copied back in place (same inode: the process keeps its ``FacetColumns``, same
    generation) and written on gives its serials to other documents than the process read. A Tuyệt mật document
    now holding a serial an open one held before must not be counted for a clearance-0 caller (its match read
    from FTS5, its level taken from the kept live mask of the documents before the restore)."""
    from storage.search_sqlite import SqliteSearchIndex

    path, backup = tmp_path / "catalog.sqlite", tmp_path / "backup.sqlite"
    index = SqliteSearchIndex(path)
    index.upsert([_entry(f"d{n}", "zabor") for n in range(5)])
    index.close()
    shutil.copyfile(path, backup)
    index = SqliteSearchIndex(path)
    index.upsert([_entry(f"a{n}", "zabor") for n in range(5)])  # open documents, no "plarn"
    for clearance in (3, 2):  # the second request reads the columns and keeps the live mask
        index.search(SearchRequest(query="", clearance=clearance, facets=True, limit=0))
    index.close()
    inode = os.stat(path).st_ino
    shutil.copyfile(backup, path)  # restored in place
    assert os.stat(path).st_ino == inode and not Path(f"{path}-wal").exists()
    index = SqliteSearchIndex(path)
    try:
        index.upsert([_entry(f"b{n}", "zabor plarn" if n == 2 else "zabor", "Tuyệt mật" if n == 2 else None)
                      for n in range(5)])
        request = SearchRequest(query="plarn", clearance=0, facets=True, limit=0)
        got = index.search(request)
        assert got.total == 0, got.facets  # the only document holding "plarn" is Tuyệt mật
        assert all(not values for values in got.facets.values())
        assert index.search(request.model_copy(update={"clearance": 3})).total == 1
    finally:
        index.close()


def test_an_ascii_phrase_is_not_found_across_the_exact_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``exact`` holds a document's accented words, sorted, one after another; FTS5 splits one at ``_`` (a word
    character to Python), so two ASCII words can follow each other there though they never do in the text
    (``aaa_đê_abc x abd_đê``: ``... abc abd đê``). A phrase of ASCII words must not match there: its kept set
    (read on the word pairs: code, title and body only) and FTS5 on the words must agree, pending or not."""
    import sqlite3

    from storage.search_sqlite import SqliteSearchIndex, run_search, termsets, write
    from storage.search_sqlite.facets import FacetColumns

    monkeypatch.setattr(termsets, "MIN_CACHED", 1)
    monkeypatch.setattr(write, "PAIRS_BATCH", 4)
    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    columns = FacetColumns(load_after=0)
    try:
        for n in range(2):  # the first one's pairs written, the second one's pending
            index.upsert([_entry(f"t{n}", "aaa_đê_abc x abd_đê")])
            if n == 0:
                index.upsert([_entry(f"f{k}", "aaa") for k in range(5)])
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            for query in ('"abc abd"', '"abc abd" aaa', 'aaa "abc abd"', "abc_abd", "abc_abd aaa"):
                for kept in (None, columns, columns):
                    got = run_search(conn, SearchRequest(query=query, clearance=3, facets=True), columns=kept)
                    assert (got.total, [h.id for h in got.hits]) == (0, []), (query, kept)
        finally:
            conn.close()
    finally:
        index.close()


def test_kept_live_masks_count_only_documents_the_arrays_hold(tmp_path: Path) -> None:
    """The arrays of a generation are read again from scratch when a search of the previous generation (a
    snapshot held across a rebuild) replaced them meanwhile: read at a newer snapshot, they lack a document
    deleted since. A search on an older snapshot still holding it must not count it on a live mask kept from
    before (its facet values are not in the arrays): the counts are those of grouping in SQL."""
    import sqlite3

    from storage.search_sqlite import SqliteSearchIndex, run_search
    from storage.search_sqlite.facets import FacetColumns

    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    columns = FacetColumns(load_after=0)
    rng = random.Random(377)
    conns = [sqlite3.connect(path, isolation_level=None) for _ in range(3)]
    first, older, newer = conns
    try:
        index.upsert([make_entry(rng, f"d{n}") for n in range(10)])
        first.execute("BEGIN")
        first.execute("SELECT count(*) FROM search_docs").fetchone()  # a snapshot of the first generation
        index.replace_all(iter([_entry(f"r{n}", "zabor") for n in range(10)] + [_entry("x", "zabor")]
                               + [_entry("y", "zabor")]))
        older.execute("BEGIN")
        run_search(older, SearchRequest(query="", clearance=3, facets=True), columns=columns)  # keeps a live mask
        index.delete(["x"])
        long_word = "dai" * 40  # a phrase FTS5 reads on its words (no pairs): counted without the kept sets
        run_search(first, SearchRequest(query=f'"zabor {long_word}"', clearance=3, facets=True), columns=columns)
        newer.execute("BEGIN")
        run_search(newer, SearchRequest(query="", clearance=3, facets=True), columns=columns)  # arrays read again
        for clearance in (2, 0):
            request = SearchRequest(query="", clearance=clearance, facets=True)
            got, by_sql = run_search(older, request, columns=columns), run_search(older, request)
            assert (got.total, got.facets) == (by_sql.total, by_sql.facets), clearance
    finally:
        for conn in conns:
            conn.close()
        index.close()
