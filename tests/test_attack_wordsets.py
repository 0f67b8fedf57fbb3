"""Attacks on the stored match sets (``search_wordsets``) and the tiered ranking of pair queries (e15f5fd, 05ef9d1).

A caller at clearance c must learn nothing of the documents above c: two indexes that differ only in their
hidden documents (same ids, levels and order, other words and values) must answer every request at clearance c
alike (total, ``total_exact``, facets, hit order), with stored sets read by a new process, after writes, deletes,
a merge and a rebuild. Counts stay exact when a stored set is stale, damaged or absent; pages of a number or
phrase query never repeat a document. ``MIN_CACHED``, ``COUNT_EXACT``, ``HEAD_K`` and ``RANK_DF`` are lowered so
the tests' tens of documents take the paths a million pages take.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from schemas.search import IndexEntry, SearchFilters, SearchRequest
from storage.search_sqlite import SqliteSearchIndex, compact, termsets, write
from storage.search_sqlite import query as ranking
from storage.search_sqlite.facets import FacetColumns
from tests.test_facets import check, make_entry
from tests.test_search_wordsets import fresh_process, stored

QUERIES = ("", "zabor", "zabor quilto", '"zabor quilto"', '"quilto mernix"', "7-NQ/TU", "NQ/TU 12", '"nq tu"',
           "mernix", "plarn")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored sets for words in 20 documents; estimated totals above 10 matches; short heading tiers."""
    monkeypatch.setattr(termsets, "MIN_CACHED", 20)
    monkeypatch.setattr(ranking, "COUNT_EXACT", 10)
    monkeypatch.setattr(ranking, "HEAD_K", 3)


def disguised(rng: random.Random, e: IndexEntry) -> IndexEntry:
    """``e`` with other words, values and số/ký hiệu: same id, level and classification."""
    other = make_entry(rng, e.id)
    metadata = {**other.metadata, "classification": e.metadata.get("classification")}
    return other.model_copy(update={"metadata": metadata, "secrecy_level": e.secrecy_level,
                                    "text": "VĂN BẢN plarn kết thúc."})


def answers(index: SqliteSearchIndex, clearance: int) -> list[object]:
    out: list[object] = []
    for query in QUERIES:
        for facets, sort, offset, filters in ((True, "relevance", 0, SearchFilters()),
                                              (False, "relevance", 0, SearchFilters()),
                                              (False, "relevance", 7, SearchFilters()),
                                              (True, "date_desc", 2, SearchFilters(year_from=2001)),
                                              (False, "relevance", 0, SearchFilters(type_name=["Báo cáo"])),
                                              (True, "relevance", 0, SearchFilters(classification=["Mật",
                                                                                                   "Tuyệt mật"]))):
            for _ in range(2):  # the first request in a process counts in SQL, the second on the columns
                r = index.search(SearchRequest(query=query, clearance=clearance, facets=facets, limit=5,
                                               offset=offset, sort=sort, filters=filters))
            out.append((query, facets, sort, offset, r.total, r.total_exact, r.facets, [h.id for h in r.hits]))
    return out


class Worlds:
    """Three indexes written alike but for the documents above ``clearance``: as they are (``a``), with other
    words and values (``b``), absent (``c``)."""

    def __init__(self, tmp_path: Path, clearance: int, n: int = 150) -> None:
        rng, self.other = random.Random(21), random.Random(99 + clearance)
        self.clearance = clearance
        docs = {f"d{i}": make_entry(rng, f"d{i}") for i in range(n)}
        assert any(e.secrecy_level > clearance and "zabor" in e.text for e in docs.values())
        self.indexes = [SqliteSearchIndex(tmp_path / f"{name}{clearance}.sqlite") for name in "abc"]
        for index, written in zip(self.indexes, self.versions(docs), strict=True):
            index.replace_all(iter(written.values()))

    def versions(self, docs: dict[str, IndexEntry]) -> list[dict[str, IndexEntry]]:
        hidden = {k for k, e in docs.items() if e.secrecy_level > self.clearance}
        return [docs, {k: disguised(self.other, e) if k in hidden else e for k, e in docs.items()},
                {k: e for k, e in docs.items() if k not in hidden}]

    def upsert(self, docs: dict[str, IndexEntry]) -> None:
        for index, written in zip(self.indexes, self.versions(docs), strict=True):
            index.upsert(list(written.values()))

    def delete(self, ids: list[str]) -> None:
        for index in self.indexes:
            index.delete(ids)

    def compact(self) -> None:
        for index in self.indexes:
            compact(index._conn, index._lock)

    def compare(self, what: str) -> None:
        got = [answers(index, self.clearance) for index in self.indexes]
        for x, y, z in zip(*got, strict=True):
            assert x == y == z, (what, self.clearance)

    def close(self) -> None:
        for index in self.indexes:
            index.close()


@pytest.mark.parametrize("clearance", [0, 1, 2])
@pytest.mark.parametrize(("rank_df", "count_exact"), [(5, 10), (2000, 1)])
def test_indexes_differing_only_in_hidden_documents_answer_alike(
        tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch, clearance: int, rank_df: int,
        count_exact: int) -> None:
    monkeypatch.setattr(ranking, "RANK_DF", rank_df)
    monkeypatch.setattr(ranking, "COUNT_EXACT", count_exact)
    worlds = Worlds(tmp_path, clearance)
    try:
        assert "zabor" in stored(worlds.indexes[0].path)
        fresh_process(monkeypatch, *worlds.indexes)
        worlds.compare("rebuilt, stored sets, new process")
        rng = random.Random(3)
        for step in range(2):
            worlds.upsert({f"s{step}-{i}": make_entry(rng, f"s{step}-{i}") for i in range(12)})
            worlds.delete([f"s{step}-11", f"d{step * 7}", f"d{step * 7 + 3}"])
            fresh_process(monkeypatch, *worlds.indexes)
            worlds.compare(f"written on, step {step}")
        worlds.compact()
        fresh_process(monkeypatch, *worlds.indexes)
        worlds.compare("merged")
    finally:
        worlds.close()


def test_a_stored_set_of_every_serial_counts_no_hidden_document(tmp_path: Path, small: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A row of ``search_wordsets`` set to every serial (damaged, or written by hand) still counts nothing above
    the caller's clearance: the clearance is applied on the live mask, not on the set."""
    docs = {f"d{i}": make_entry(random.Random(i), f"d{i}") for i in range(120)}
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    conn = sqlite3.connect(index.path)
    try:
        rows = conn.execute("SELECT item, length(bits) FROM search_wordsets").fetchall()
        assert rows
        for item, size in rows:
            conn.execute("UPDATE search_wordsets SET bits = ? WHERE item = ?", (b"\xff" * int(size), item))
        conn.commit()
    finally:
        conn.close()
    try:
        for clearance in range(3):
            fresh_process(monkeypatch, index)
            for _ in range(2):
                r = index.search(SearchRequest(query="zabor", clearance=clearance, facets=True, limit=0))
            visible = sum(1 for e in docs.values() if e.secrecy_level <= clearance)
            assert r.total <= visible
            hidden = {e.metadata.get("classification") for e in docs.values() if e.secrecy_level > clearance}
            assert not hidden & {f.value for f in r.facets["classification"]}, clearance
    finally:
        index.close()


def _damage(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("damage", ["substr(bits, 1, 1)", "zeroblob(0)", "'text'"])
def test_a_truncated_stored_set_is_not_trusted(tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch,
                                               damage: str) -> None:
    docs = {f"d{i}": make_entry(random.Random(i), f"d{i}") for i in range(120)}
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    # cut to its first byte, emptied (numpy's unpackbits of zero bytes with a count returns uninitialised memory,
    # so trusted, the counts would change from run to run), or not a blob
    _damage(index.path, f"UPDATE search_wordsets SET bits = {damage} WHERE word = ?", "zabor")
    try:
        fresh_process(monkeypatch, index)
        check(index, docs)
    finally:
        index.close()


def test_an_index_without_the_table_counts_exactly_when_read(tmp_path: Path, small: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An index written before ``search_wordsets`` existed: a reader that cannot create it counts from FTS5."""
    docs = {f"d{i}": make_entry(random.Random(i), f"d{i}") for i in range(120)}
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    index._conn.execute("DROP TABLE search_wordsets")
    try:
        fresh_process(monkeypatch, index)
        check(index, docs)
    finally:
        index.close()
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'search_wordsets'").fetchone()[0] == 0
        conn.execute("BEGIN")
        r = ranking.run_search(conn, SearchRequest(query="zabor", clearance=1, facets=True, limit=0),
                               columns=FacetColumns(load_after=0))
        want = sum(1 for e in docs.values() if e.secrecy_level <= 1 and "zabor" in e.text.split())
        assert r.total == want
    finally:
        conn.close()


def test_a_stored_set_of_another_generation_is_not_used(tmp_path: Path, small: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A row left from an earlier generation (a rebuild's rows copied in, say) is not counted from."""
    rng = random.Random(4)
    docs = {f"d{i}": make_entry(rng, f"d{i}") for i in range(120)}
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    conn = sqlite3.connect(index.path)
    try:
        old = conn.execute("SELECT item, word, generation, seen, deleted, bits FROM search_wordsets").fetchall()
    finally:
        conn.close()
    docs = {f"r{i}": make_entry(rng, f"r{i}") for i in range(120)}
    index.replace_all(iter(docs.values()))
    conn = sqlite3.connect(index.path)
    try:
        conn.execute("DELETE FROM search_wordsets")
        conn.executemany("INSERT INTO search_wordsets VALUES (?, ?, ?, ?, ?, ?)",
                         [(i, w, g, 1 << 60, 0, bytes(len(b))) for i, w, g, _, _, b in old])  # all zeros
        conn.commit()
    finally:
        conn.close()
    try:
        fresh_process(monkeypatch, index)
        check(index, docs)
    finally:
        index.close()


def test_an_older_snapshot_never_counts_from_a_set_stored_after_a_deletion(tmp_path: Path, small: None,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A word that became common after a deletion is stored read whole at a snapshot that lacks the deleted
    document; a search on an older snapshot (where it still is), in a process that took that set from a newer
    search, counts what grouping in SQL counts at its snapshot."""
    path = tmp_path / "index.sqlite"
    rng = random.Random(12)
    docs = {f"d{i}": make_entry(rng, f"d{i}").model_copy(update={"text": "VĂN BẢN zabor kết thúc."})
            for i in range(60)}
    docs["m"] = make_entry(rng, "m").model_copy(update={"text": "VĂN BẢN plarn kết thúc.", "secrecy_level": 0,
                                                         "metadata": {"classification": None}})
    index = SqliteSearchIndex(path)
    index.replace_all(iter(docs.values()))
    assert "plarn" not in stored(path)
    older = sqlite3.connect(path, isolation_level=None)
    try:
        older.execute("BEGIN")
        request = SearchRequest(query="plarn", clearance=3, facets=True, limit=0)
        truth = ranking.run_search(older, request)
        assert truth.total == 1
        index.delete(["m"])
        index.upsert([make_entry(rng, f"x{i}").model_copy(update={"text": "VĂN BẢN plarn kết thúc."})
                      for i in range(30)])
        compact(index._conn, index._lock)
        assert "plarn" in stored(path)  # read whole after "m" was deleted
        fresh_process(monkeypatch, index)
        columns = FacetColumns(load_after=0)
        browse = SearchRequest(clearance=3, facets=True, limit=0)
        assert ranking.run_search(older, browse, columns=columns).total == 61  # the column store holds "m"
        newer = sqlite3.connect(path, isolation_level=None)
        try:
            newer.execute("BEGIN")
            now = ranking.run_search(newer, request)
            assert ranking.run_search(newer, request, columns=columns).total == now.total == 30
            got = ranking.run_search(older, request, columns=columns)
            assert (got.total, got.facets) == (truth.total, truth.facets)
        finally:
            newer.close()
    finally:
        older.close()
        index.close()


def copied(tmp_path: Path, seed: int) -> tuple[SqliteSearchIndex, dict[str, IndexEntry], sqlite3.Connection,
                                               random.Random]:
    """An index of 60 documents rebuilt, and a copy of its file as it is then (to be put back in place)."""
    rng = random.Random(seed)
    docs = {f"d{i}": make_entry(rng, f"d{i}") for i in range(60)}
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    index.replace_all(iter(docs.values()))
    backup = sqlite3.connect(tmp_path / "backup.sqlite")
    index._conn.backup(backup)
    return index, docs, backup, rng


@pytest.mark.xfail(strict=True, reason="pre-existing (also at ae30831): after a copy-back written on, the process's "
                                       "column store, live masks and result cache are not re-read (same generation, "
                                       "docids below the loaded top): facet totals count the replaced documents")
def test_a_file_copied_back_in_place_and_written_on_counts_exactly(tmp_path: Path, small: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A process keeps the set of "zabor" read up to a high docid; the catalog file is restored from an older copy
    (same generation, fewer documents) and written on: the new documents take the serials the set marks."""
    index, docs, backup, rng = copied(tmp_path, 30)
    later = {f"z{i}": make_entry(rng, f"z{i}").model_copy(update={"text": "VĂN BẢN zabor kết thúc."})
             for i in range(40)}
    index.upsert(list(later.values()))
    try:
        check(index, {**docs, **later})  # "zabor"'s set kept in this process, up to the newest docid
        backup.backup(index._conn)  # the older copy, back in place
        backup.close()
        restored = {f"y{i}": make_entry(rng, f"y{i}").model_copy(update={"text": "VĂN BẢN plarn kết thúc."})
                    for i in range(40)}
        index.upsert(list(restored.values()))
        check(index, {**docs, **restored})
    finally:
        index.close()


def test_pages_of_a_phrase_query_never_repeat_and_agree_written_or_pending(
        tmp_path: Path, small: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep pages of number and phrase queries (tiers: number, heading, newest) list every match once, in the
    same order whether the documents' pairs are written or pending."""
    rng = random.Random(41)
    docs = [make_entry(rng, f"d{i}") for i in range(90)]
    docs = [e.model_copy(update={"metadata": {**e.metadata, "title": "zabor quilto" if i % 4 == 0 else None,
                                              "code_number": "7" if i % 3 == 0 else e.metadata["code_number"]}})
            for i, e in enumerate(docs)]  # "7-NQ/TU": more documents than COUNT_EXACT (its tier probes FTS5)
    docs = [e.model_copy(update={"text": e.text + " Căn cứ 7-NQ/TU."}) if i % 5 == 1 else e
            for i, e in enumerate(docs)]  # documents that only cite it: after those whose number it is
    numbered = {e.id: e.secrecy_level for e in docs if e.metadata["code_number"] == "7"}
    monkeypatch.setattr(write, "PAIRS_BATCH", 1)
    written = SqliteSearchIndex(tmp_path / "written.sqlite")
    for e in docs:
        written.upsert([e])
    monkeypatch.setattr(write, "PAIRS_BATCH", 1000)
    pending = SqliteSearchIndex(tmp_path / "pending.sqlite")
    for e in docs:
        pending.upsert([e])
    try:
        for query in ('"zabor quilto"', '"quilto mernix"', "7-NQ/TU", '"nq tu"', "zabor quilto"):
            for clearance in (0, 3):
                lists = []
                for index in (written, pending):
                    ids: list[str] = []
                    monkeypatch.setattr(ranking, "COUNT_EXACT", 10_000)  # every match, counted exactly
                    whole = index.search(SearchRequest(query=query, clearance=clearance, limit=1000))
                    monkeypatch.setattr(ranking, "COUNT_EXACT", 10)
                    assert whole.total == len(whole.hits), (query, clearance)
                    assert query not in ('"nq tu"', "7-NQ/TU") or clearance < 3 or whole.total > 10  # deep pages
                    for offset in range(0, whole.total + 6, 3):
                        page = index.search(SearchRequest(query=query, clearance=clearance, limit=3, offset=offset))
                        ids += [h.id for h in page.hits]
                    assert len(ids) == len(set(ids)), (query, clearance)
                    assert set(ids) == {h.id for h in whole.hits}, (query, clearance)
                    lists.append(ids)
                assert lists[0] == lists[1], (query, clearance)
                if query == "7-NQ/TU":
                    first = {d for d, level in numbered.items() if level <= clearance}
                    assert (clearance < 3 or len(first) > 10) and len(first) < len(lists[0]), clearance
                    assert set(lists[0][:len(first)]) == first, clearance
                for facets in (False, True):
                    a, b = (index.search(SearchRequest(query=query, clearance=clearance, limit=5, facets=facets))
                            for index in (written, pending))
                    assert (a.total, a.total_exact, a.facets, [h.id for h in a.hits]) == (
                        b.total, b.total_exact, b.facets, [h.id for h in b.hits]), (query, clearance, facets)
    finally:
        written.close()
        pending.close()


def test_after_a_copy_back_documents_above_clearance_are_not_counted(tmp_path: Path, small: None) -> None:
    """A process counted open documents; the file is restored from an older copy and written on with documents
    of level 3 under the same serials: a caller at clearance 0 is not counted them."""
    index, docs, backup, rng = copied(tmp_path, 31)
    path = index.path
    open_docs = [make_entry(rng, f"z{i}").model_copy(update={"secrecy_level": 0, "metadata": {"classification": None}})
                 for i in range(40)]
    index.upsert(open_docs)
    secret = [make_entry(rng, f"y{i}").model_copy(update={"secrecy_level": 3,
                                                          "metadata": {"classification": "Tuyệt mật"}})
              for i in range(40)]
    try:
        browse = SearchRequest(clearance=0, facets=True, limit=0)
        for _ in range(2):  # the second request counts on the column store (and keeps a live mask)
            index.search(browse)
        backup.backup(index._conn)  # the older copy, back in place
        backup.close()
        index.upsert(secret)  # the serials the open documents had, now documents of level 3
        conn = sqlite3.connect(path)
        try:
            visible = conn.execute("SELECT count(*) FROM search_docs WHERE level = 0").fetchone()[0]
        finally:
            conn.close()
        assert visible == sum(1 for e in docs.values() if e.secrecy_level == 0)
        assert index.search(browse).total == visible
    finally:
        index.close()
