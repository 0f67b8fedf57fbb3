"""Facet counts: exact, over every match of the query, at the caller's clearance only, on every search backend
(embedded SQLite FTS5 and Elasticsearch, as ``test_search_contract``), and still exact after updates, deletes
and a rebuild (the embedded index counts on a column store kept between searches: it must not drift).

Ground truth is recomputed in the test from the entries written: each document holds some of a few made-up
ASCII words (``WORDS``), so which documents a query matches is known without asking the index.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.search import FACET_FIELDS, UNCLASSIFIED, IndexEntry, SearchFilters, SearchRequest
from storage.search_index import SearchIndex
from tests.test_search_contract import BACKENDS

WORDS = ("zabor", "quilto", "mernix", "vostel", "plarn")  # zabor: in most documents (a common word)
TYPES = ("Nghị quyết", "Báo cáo", "Công văn", "Kế hoạch", None)
ORGANS = ("Thành ủy Đà Nẵng", "Quận ủy Hải Châu", "Huyện ủy Hòa Vang")
LEVELS = {None: 0, "Mật": 1, "Tối mật": 2, "Tuyệt mật": 3}
QUERIES = ("", "zabor", "quilto", "zabor mernix", "vostel plarn", "quilto mernix vostel")


def make_entry(rng: random.Random, doc_id: str) -> IndexEntry:
    words = [w for n, w in enumerate(WORDS) if rng.random() < (0.9 if n == 0 else 0.35)]
    classification = rng.choice((None, None, None, "Mật", "Tối mật", "Tuyệt mật"))
    year = rng.choice((None, 1990, 2001, 2001, 2015, 2024))
    issued = None if year is None else f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    metadata = {"code_number": str(rng.randint(1, 99)), "code_notation": "NQ/TU", "type_name": rng.choice(TYPES),
                "issued_date": issued, "organ_name": rng.choice(ORGANS), "subject": "về công tác",
                "signer": None, "classification": classification}
    return IndexEntry(id=doc_id, source=f"{doc_id}.pdf", batch=rng.choice(("lo-1", "lo-2", "lo-3")),
                      file_code=rng.choice((None, "H1.1", "H2.7")), status="done", metadata=metadata,
                      text=f"VĂN BẢN {' '.join(words)} kết thúc.", issued_date=issued, year=year,
                      secrecy_level=LEVELS[classification])


def facet_values(e: IndexEntry) -> dict[str, str | None]:
    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value.strip() else None

    return {"type_name": text(e.metadata.get("type_name")), "year": None if e.year is None else str(e.year),
            "organ_name": text(e.metadata.get("organ_name")),
            "classification": text(e.metadata.get("classification")) or UNCLASSIFIED, "batch": e.batch,
            "file_code": e.file_code}


def passes(e: IndexEntry, f: SearchFilters) -> bool:
    v = facet_values(e)
    for name in ("type_name", "organ_name", "classification", "batch", "file_code"):
        if getattr(f, name) and v[name] not in getattr(f, name):
            return False
    if (f.year_from is not None or f.year_to is not None) and e.year is None:
        return False
    if (f.year_from is not None and e.year is not None and e.year < f.year_from) or \
            (f.year_to is not None and e.year is not None and e.year > f.year_to):
        return False
    if f.date_from is not None and (e.issued_date is None or e.issued_date < f.date_from.isoformat()):
        return False
    return not (f.date_to is not None and (e.issued_date is None or e.issued_date > f.date_to.isoformat()))


def expected(docs: dict[str, IndexEntry], query: str, clearance: int,
             filters: SearchFilters) -> tuple[int, dict[str, Counter[str]]]:
    wanted = query.split()
    matched = [e for e in docs.values() if e.secrecy_level <= clearance and passes(e, filters)
               and all(w in e.text.split() for w in wanted)]
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACET_FIELDS}
    for e in matched:
        for name, value in facet_values(e).items():
            if value is not None:
                counts[name][value] += 1
    return len(matched), counts


def check(index: SearchIndex, docs: dict[str, IndexEntry], filters: SearchFilters | None = None) -> None:
    """Every query of ``QUERIES`` at every clearance: total and facet counts exactly as recounted."""
    filters = filters or SearchFilters()
    for query in QUERIES:
        for clearance in range(4):
            result = index.search(SearchRequest(query=query, clearance=clearance, facets=True, limit=3,
                                                filters=filters))
            total, counts = expected(docs, query, clearance, filters)
            got = {name: {f.value: f.count for f in values} for name, values in result.facets.items()}
            assert (result.total, got) == (total, {n: dict(c) for n, c in counts.items()}), (query, clearance)


@pytest.fixture(params=sorted(BACKENDS))
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    idx = BACKENDS[request.param](tmp_path, request)
    yield idx
    idx.close()


def test_facets_are_exact_and_clearance_filtered(index: SearchIndex) -> None:
    rng = random.Random(21)
    docs = {f"d{n}": make_entry(rng, f"d{n}") for n in range(120)}
    index.upsert(list(docs.values()))
    check(index, docs)
    for filters in (SearchFilters(type_name=["Nghị quyết", "Báo cáo"]), SearchFilters(organ_name=["Quận ủy Hải Châu"]),
                    SearchFilters(classification=[UNCLASSIFIED, "Mật"], batch=["lo-2"]),
                    SearchFilters(file_code=["H1.1"]), SearchFilters(year_from=2001, year_to=2015),
                    SearchFilters(date_from="2001-03-01", date_to="2015-06-30"),
                    SearchFilters(type_name=["Không có loại này"])):
        check(index, docs, filters)


def test_a_caller_cannot_tell_hidden_documents_from_absent_ones(index: SearchIndex, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    """At clearance c, every count equals the count of an index holding only the documents of level <= c."""
    rng = random.Random(5)
    docs = [make_entry(rng, f"d{n}") for n in range(80)]
    index.upsert(docs)
    for clearance in range(3):
        backend = request.node.callspec.params["index"]
        (tmp_path / f"open{clearance}").mkdir()
        open_only = BACKENDS[backend](tmp_path / f"open{clearance}", request)
        try:
            open_only.upsert([e for e in docs if e.secrecy_level <= clearance])
            for query in QUERIES:
                seen = index.search(SearchRequest(query=query, clearance=clearance, facets=True, limit=0))
                alone = open_only.search(SearchRequest(query=query, clearance=3, facets=True, limit=0))
                assert (seen.total, seen.facets) == (alone.total, alone.facets), (query, clearance)
        finally:
            open_only.close()


def test_counts_do_not_drift_through_updates_deletes_and_rebuilds(index: SearchIndex) -> None:
    rng = random.Random(8)
    docs = {f"d{n}": make_entry(rng, f"d{n}") for n in range(60)}
    index.upsert(list(docs.values()))
    check(index, docs)  # the embedded index's column store is read here, then kept
    for step in range(6):
        newest = sorted(docs)[-1]
        changed = [newest, *rng.sample(sorted(docs), 5)]  # the newest document too: its docid is the highest
        for doc_id in changed:
            docs[doc_id] = make_entry(rng, doc_id)  # new words, values and level
        index.upsert([docs[d] for d in dict.fromkeys(changed)])
        gone = rng.sample(sorted(docs), 3)
        index.delete(gone)
        for doc_id in gone:
            del docs[doc_id]
        for n in range(4):
            doc_id = f"s{step}-{n}"
            docs[doc_id] = make_entry(rng, doc_id)
            index.upsert([docs[doc_id]])  # one document a transaction, as digitisation commits
        check(index, docs)
    docs = {f"r{n}": make_entry(rng, f"r{n}") for n in range(40)}
    assert index.replace_all(iter(docs.values())) == 40
    check(index, docs)
    index.delete(sorted(docs)[-1:])  # the newest one gone: its serial is not given again
    del docs[sorted(docs)[-1]]
    check(index, docs)  # a deletion alone (counts of the same requests are kept between searches)
    docs["after"] = make_entry(rng, "after")
    index.upsert([docs["after"]])
    check(index, docs)


def test_embedded_counts_follow_writes_of_another_connection(tmp_path: Path) -> None:
    """The catalog writes index rows on its own connection (``SqliteIndexWriter``), often in another process:
    an open index's column store still counts what is committed, and a new index object on the file agrees."""
    from storage.search_sqlite import SqliteIndexWriter, SqliteSearchIndex

    path = tmp_path / "catalog.sqlite"
    index = SqliteSearchIndex(path)
    rng = random.Random(3)
    docs = {f"d{n}": make_entry(rng, f"d{n}") for n in range(30)}
    writer, conn = SqliteIndexWriter(), sqlite3.connect(path, isolation_level=None)
    try:
        writer.prepare(conn)
        conn.execute("BEGIN IMMEDIATE")
        writer.write(conn, docs.values())
        conn.execute("COMMIT")
        check(index, docs)
        for doc_id in (sorted(docs, key=lambda d: int(d[1:]))[-1], "d3"):  # the newest first: its docid is the top
            conn.execute("BEGIN IMMEDIATE")
            writer.delete(conn, [doc_id])
            docs[doc_id] = make_entry(rng, doc_id)
            writer.write(conn, [docs[doc_id]])
            conn.execute("COMMIT")
            check(index, docs)
        conn.execute("BEGIN IMMEDIATE")
        writer.clear(conn)
        docs = {f"n{n}": make_entry(rng, f"n{n}") for n in range(10)}
        writer.write(conn, docs.values())
        conn.execute("COMMIT")
        check(index, docs)
        second = SqliteSearchIndex(path)
        try:
            check(second, docs)
        finally:
            second.close()
    finally:
        conn.close()
        index.close()


def test_embedded_column_store_agrees_with_grouping_in_sql(tmp_path: Path) -> None:
    """The two ways the embedded index counts (the column store; SQL, its fallback) give the same answer."""
    from storage.search_sqlite import SqliteSearchIndex, run_search
    from storage.search_sqlite.facets import FacetColumns

    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    rng = random.Random(13)
    index.upsert([make_entry(rng, f"d{n}") for n in range(150)])
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    try:
        for query in QUERIES:
            for clearance in range(4):
                for filters in (SearchFilters(), SearchFilters(year_from=2001, date_to="2015-12-31"),
                                SearchFilters(batch=["lo-1", "lo-3"], classification=["Tối mật"])):
                    request = SearchRequest(query=query, clearance=clearance, facets=True, filters=filters)
                    by_sql = run_search(conn, request)
                    by_columns = run_search(conn, request, columns=FacetColumns(load_after=0))
                    assert (by_sql.total, by_sql.facets) == (by_columns.total, by_columns.facets)
    finally:
        conn.close()
        index.close()


def test_embedded_column_store_says_when_it_does_not_hold_a_match(tmp_path: Path) -> None:
    """A match the arrays do not hold (a search on a snapshot older than a rebuild) is not counted as nothing:
    ``count_facets`` gives up and the search groups in SQL."""
    import numpy as np

    from storage.search_sqlite import SqliteSearchIndex
    from storage.search_sqlite.facets import FacetColumns, count_facets

    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    rng = random.Random(1)
    index.upsert([make_entry(rng, f"d{n}") for n in range(5)])
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    try:
        state, _ = FacetColumns(load_after=0).current(conn)
        assert state is not None
        held = np.asarray([r[0] for r in conn.execute("SELECT docid FROM search_docs")], dtype=np.int64)
        counted = count_facets(state, held, SearchFilters())
        assert counted is not None and counted[0] == 5
        assert count_facets(state, np.append(held, held.max() + 4), SearchFilters()) is None  # beyond the arrays
        assert count_facets(state, np.append(held, 0), SearchFilters()) is None  # serial 0 is never given
    finally:
        conn.close()
        index.close()
