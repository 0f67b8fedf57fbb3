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


# --- kept match sets of common words (storage/search_sqlite/termsets.py) -------------------------------------


@pytest.fixture
def kept_sets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every word's match set kept (``MIN_CACHED`` 1: the tests' words are in tens of documents, not tens of
    thousands), and a tally of the counts taken from kept sets: a test asserts they were used."""
    from storage.search_sqlite import termsets

    monkeypatch.setattr(termsets, "MIN_CACHED", 1)
    used: list[int] = []
    real = termsets.TermSets.serials

    def spy(self: termsets.TermSets, *args: object, **kwargs: object) -> object:
        found = real(self, *args, **kwargs)  # type: ignore[arg-type]
        if found is not None:
            used.append(len(found))
        return found

    monkeypatch.setattr(termsets.TermSets, "serials", spy)
    return used


def test_kept_sets_count_exactly_through_updates_deletes_and_rebuilds(tmp_path: Path, kept_sets: list[int]) -> None:
    """Counts from the kept sets equal the recount at every clearance and filter set, while documents are added
    (one a transaction), updated (a new docid), deleted (the newest too) and the index rebuilt."""
    from storage.search_sqlite import SqliteSearchIndex

    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    rng = random.Random(34)
    docs = {f"d{n}": make_entry(rng, f"d{n}") for n in range(80)}
    filter_sets = (SearchFilters(), SearchFilters(type_name=["Báo cáo"], year_from=2001),
                   SearchFilters(classification=[UNCLASSIFIED, "Tối mật"], date_to="2015-06-30"))
    try:
        index.upsert(list(docs.values()))
        for filters in filter_sets:
            check(index, docs, filters)
        assert kept_sets and index._columns.terms.held()[0] == len(WORDS)  # every word a query names
        for step in range(5):
            newest = sorted(docs)[-1]
            changed = [newest, *rng.sample(sorted(docs), 4)]
            for doc_id in changed:
                docs[doc_id] = make_entry(rng, doc_id)
            index.upsert([docs[d] for d in dict.fromkeys(changed)])
            check(index, docs)
            gone = [sorted(docs)[-1], *rng.sample(sorted(docs), 2)]  # the newest one too: the top docid goes down
            index.delete(list(dict.fromkeys(gone)))
            for doc_id in gone:
                docs.pop(doc_id, None)
            for n in range(3):
                doc_id = f"s{step}-{n}"
                docs[doc_id] = make_entry(rng, doc_id)
                index.upsert([docs[doc_id]])
            for filters in filter_sets:
                check(index, docs, filters)
        docs = {f"r{n}": make_entry(rng, f"r{n}") for n in range(30)}
        assert index.replace_all(iter(docs.values())) == 30
        before = len(kept_sets)
        check(index, docs)
        assert len(kept_sets) > before  # the new generation's sets, read again
    finally:
        index.close()


def test_kept_sets_never_count_a_hidden_document(tmp_path: Path, kept_sets: list[int]) -> None:
    """The sets are read at full clearance (the clearance is applied on the live mask): a caller at clearance
    0 after a fully cleared one has filled them still counts exactly what an index of open documents only
    counts."""
    from storage.search_sqlite import SqliteSearchIndex

    rng = random.Random(55)
    docs = [make_entry(rng, f"d{n}") for n in range(90)]
    assert any(e.secrecy_level > 0 and "zabor" in e.text for e in docs)
    index, open_only = SqliteSearchIndex(tmp_path / "all.sqlite"), SqliteSearchIndex(tmp_path / "open.sqlite")
    try:
        index.upsert(docs)
        open_only.upsert([e for e in docs if e.secrecy_level == 0])
        for query in QUERIES[1:]:
            for _ in range(2):  # the second request counts on the columns (and fills the sets)
                index.search(SearchRequest(query=query, clearance=3, facets=True, limit=0))
        used = len(kept_sets)
        for query in QUERIES[1:]:
            seen = index.search(SearchRequest(query=query, clearance=0, facets=True, limit=0))
            alone = open_only.search(SearchRequest(query=query, clearance=3, facets=True, limit=0))
            assert (seen.total, seen.facets) == (alone.total, alone.facets), query
            assert all(f.value == UNCLASSIFIED for f in seen.facets["classification"]), query
        assert len(kept_sets) >= used + len(QUERIES) - 1
    finally:
        index.close()
        open_only.close()


def test_kept_sets_are_not_used_by_an_older_snapshot_that_saw_a_later_deleted_document(
        tmp_path: Path, kept_sets: list[int]) -> None:
    """A set extended at a snapshot lacks a document deleted before it; a search on an older snapshot, where
    that document is still there, must count it (it reads FTS5, not the set). And a search on a snapshot held
    open across writes counts what it saw, whatever newer searches kept meanwhile."""
    from storage.search_sqlite import SqliteSearchIndex, run_search
    from storage.search_sqlite.facets import FacetColumns

    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    rng = random.Random(89)
    columns = FacetColumns(load_after=0)  # shared by the connections below, as the threads of a process share it
    request = SearchRequest(query="zabor", clearance=3, facets=True, limit=0)
    older, middle, newer = (sqlite3.connect(path, isolation_level=None) for _ in range(3))
    try:
        index.upsert([make_entry(rng, f"d{n}") for n in range(40)])
        older.execute("BEGIN")
        first = run_search(older, request, columns=columns)  # the set of "zabor" read at this snapshot
        extra = make_entry(rng, "x")
        extra = extra.model_copy(update={"text": "VĂN BẢN zabor kết thúc."})
        index.upsert([extra])
        index.upsert([make_entry(rng, "y")])  # above "x": deleting "x" leaves the top docid where it is
        middle.execute("BEGIN")
        at_middle = run_search(middle, request)  # grouped in SQL: the truth at this snapshot, "x" in it
        assert columns.current(middle)[0] is not None  # the column store now holds "x" (so only the rule saves it)
        index.delete(["x"])
        newer.execute("BEGIN")
        assert run_search(newer, request, columns=columns).total == at_middle.total - 1  # extends the set
        got = run_search(middle, request, columns=columns)
        assert (got.total, got.facets) == (at_middle.total, at_middle.facets)
        again = run_search(older, request, columns=columns)
        assert (again.total, again.facets) == (first.total, first.facets)
        assert (again.total, again.facets) == (run_search(older, request).total, run_search(older, request).facets)
        assert kept_sets  # the newer searches did count on the set
    finally:
        for conn in (older, middle, newer):
            conn.close()
        index.close()


def test_kept_sets_are_bounded(tmp_path: Path, kept_sets: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond ``CACHE_BYTES`` the least recently used sets go (here: every one), and the counts stay exact."""
    from storage.search_sqlite import SqliteSearchIndex, termsets

    monkeypatch.setattr(termsets, "CACHE_BYTES", 200)  # 128 bytes a set here (1,024 serials): one at most
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    rng = random.Random(144)
    docs = {f"d{n}": make_entry(rng, f"d{n}") for n in range(100)}
    try:
        index.upsert(list(docs.values()))
        check(index, docs)
        count, held = index._columns.terms.held()
        assert (count, held) == (1, 128)
        assert kept_sets
    finally:
        index.close()


def test_kept_sets_of_phrases_and_browsing_agree_with_grouping_in_sql(tmp_path: Path, kept_sets: list[int],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Phrases (found on their pairs, the newest documents on their words) and browsing (every visible document)
    counted on kept sets and live masks give what grouping in SQL gives, through adds, updates and deletes."""
    from storage.search_sqlite import SqliteSearchIndex, run_search, write
    from storage.search_sqlite.facets import FacetColumns

    monkeypatch.setattr(write, "PAIRS_BATCH", 16)  # some documents' pairs written, the newest pending
    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    columns = FacetColumns(load_after=0)
    rng = random.Random(233)
    queries = ("", '"zabor quilto"', 'zabor "quilto mernix"', '"vostel plarn" zabor', "mernix")

    def compare() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            for query in queries:
                for clearance in range(4):
                    for filters in (SearchFilters(), SearchFilters(organ_name=["Huyện ủy Hòa Vang"], year_to=2015)):
                        request = SearchRequest(query=query, clearance=clearance, facets=True, filters=filters)
                        by_sql, kept = run_search(conn, request), run_search(conn, request, columns=columns)
                        assert (kept.total, kept.facets) == (by_sql.total, by_sql.facets), (query, clearance)
        finally:
            conn.close()

    try:
        index.upsert([make_entry(rng, f"d{n}") for n in range(70)])
        compare()
        for step in range(3):
            index.upsert([make_entry(rng, f"d{n}") for n in rng.sample(range(70), 5)])  # updates
            index.delete([f"d{n}" for n in rng.sample(range(70), 3)])
            for n in range(6):
                index.upsert([make_entry(rng, f"s{step}-{n}")])
            compare()
        assert len(kept_sets) >= 4 * 2 * len(queries) * 4
        assert columns.terms.held()[0] >= 5  # the phrases' sets too
    finally:
        index.close()
