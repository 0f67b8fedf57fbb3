"""The embedded index's word pairs (``search_pairs``) find exactly the documents the words' phrase finds.

A query of phrases of ASCII words (every folded Vietnamese phrase) is matched on the pair tokens of the documents
whose pairs are written, and on the words for the pending ones (``PAIRS_BATCH``). These tests check the pair
tokens against FTS5's own tokens, and the documents found against the words' phrase on ``search_fts``, across
batches written and pending, replaced and deleted documents, clearances and filters, and an older layout.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.search import SearchFilters, SearchRequest
from schemas.text import fold_fast
from storage import search_sqlite
from storage.search_sqlite import DEAD_PAIR, SqliteSearchIndex, compaction, pair_token, write
from storage.search_sqlite import query as ranking
from storage.search_sqlite.tokens import _pair_text, _tokenize, _tokenizer_lock
from tests.test_search_contract import CORPUS, HOSTILE, entry
from tests.test_search_sqlite_paths import QUERIES

TEXTS = [
    "cong tac van thu", "Công tác văn thư, lưu trữ: “hồ sơ” – tài liệu…", "15-NQ/TU ngày 5-3-2020", "", "***",
    "m² và 25°C; x²y", "Ðà Nẵng đ Đ", "ab_cd ef", "Ελληνικά và русский 中文 ab", "a\u0301b c \u0301d",
    "x" * 120 + " ab cd " + "y" * 99 + " ef", "a\u00a0b\u2003c\u200bd", "tab\there\nline\r\nend", "№5 §2 ①②",
    "ﬁne ﬂow", "İstanbul ǅemal", "\ue000 private \ue001 use", "\U0001d400 math \U0001f600 emoji",
]


def fts5_tokens(text: str) -> list[str]:
    with _tokenizer_lock:
        return _tokenize(text)


@pytest.mark.parametrize("text", TEXTS)
def test_one_pair_token_per_fts5_token(text: str) -> None:
    folded = fold_fast(text)
    words, pairs = fts5_tokens(folded), fts5_tokens(_pair_text(folded))
    assert len(pairs) == len(words)
    for n, word in enumerate(words):
        following = words[n + 1] if n + 1 < len(words) else ""
        ascii_word = word.isascii() and word.isalnum() and len(word) < 100
        if ascii_word and following.isascii() and following.isalnum():
            assert pairs[n] == pair_token(word, following)
        else:  # no pair a query could ask for
            assert pairs[n] in {DEAD_PAIR, pair_token(word, "") if ascii_word else DEAD_PAIR}


def test_pair_tokens_are_never_shared() -> None:
    assert pair_token("cong", "tac") == "04congtac" != pair_token("con", "gtac")
    assert pair_token("1", "23") != pair_token("12", "3")


VOCAB = ["cong", "tac", "van", "thu", "luu", "tru", "ho", "so", "dang", "bo", "thanh", "pho", "15", "nq", "tu"]
ODD = ["–", "“", "”", "²", "…", "中", "ab_cd", "m²", "\u00a0"]


def _doc(rng: random.Random, n: int) -> str:
    words = [rng.choice(VOCAB) for _ in range(rng.randint(3, 40))]
    for _ in range(rng.randint(0, 3)):
        words.insert(rng.randint(0, len(words)), rng.choice(ODD))
    seps = [rng.choice([" ", " ", ", ", "\n", ". ", "-"]) for _ in words]
    return "".join(w + s for w, s in zip(words, seps, strict=True)).strip() or "x"


def _phrases(rng: random.Random, count: int) -> list[str]:
    return ['"' + " ".join(rng.choice(VOCAB) for _ in range(rng.randint(2, 4))) + '"' for _ in range(count)]


@pytest.fixture()
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write, "PAIRS_BATCH", 7)


def _by_words(path: Path, phrase: str, clearance: int = 3) -> set[str]:
    """The documents whose folded columns hold ``phrase`` (words in place): FTS5 on ``search_fts`` alone."""
    conn = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in conn.execute(
            "SELECT d.id FROM search_fts f JOIN search_docs d ON d.docid = f.rowid "
            "WHERE search_fts MATCH ? AND d.level <= ?", (phrase, clearance))}
    finally:
        conn.close()


def _found(index: SqliteSearchIndex, query: str, **kw: object) -> tuple[int, set[str]]:
    result = index.search(SearchRequest(query=query, limit=1000, **kw))  # type: ignore[arg-type]
    return result.total, {h.id for h in result.hits}


@pytest.fixture()
def random_index(tmp_path: Path, small_batches: None) -> Iterator[tuple[SqliteSearchIndex, random.Random]]:
    rng = random.Random(5)
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    for n in range(60):  # one document per transaction, as the pipeline commits: batches of 7 written, 4 pending
        index.upsert([entry(f"d{n}", _doc(rng, n), classification=rng.choice([None, None, "Mật"]),
                            issued_date=f"{2000 + n % 20}-01-01", organ_name=rng.choice(["A", "B"]))])
    yield index, rng
    index.close()


def test_phrases_find_what_the_words_find(random_index: tuple[SqliteSearchIndex, random.Random],
                                          tmp_path: Path) -> None:
    index, rng = random_index
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path)
    pending, documents = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                          for t in ("search_pairs_pending", "search_docs"))
    conn.close()
    assert 0 < pending < documents / 2  # some pending, most written
    for phrase in _phrases(rng, 150):
        words = " ".join(fold_fast(phrase.strip('"')).split())
        for clearance in (0, 3):
            want = _by_words(path, f'"{words}"', clearance)
            assert _found(index, phrase, clearance=clearance) == (len(want), want), phrase
        year = SearchFilters(year_from=2005, year_to=2012, organ_name=["A"])
        total, ids = _found(index, phrase, clearance=3, filters=year)
        assert ids <= _by_words(path, f'"{words}"') and total == len(ids)
        assert _found(index, phrase, clearance=3, sort="date_desc")[1] == _by_words(path, f'"{words}"')
    two = _phrases(rng, 1)[0] + " " + _phrases(rng, 1)[0]  # two phrases: both on the pairs
    assert _found(index, two)[1] == {d for d in _by_words(path, two.split('" "')[0] + '"')
                                     if d in _by_words(path, '"' + two.split('" "')[1])}


def test_replaced_and_deleted_documents_leave_no_pairs(random_index: tuple[SqliteSearchIndex, random.Random],
                                                       tmp_path: Path) -> None:
    index, rng = random_index
    path = tmp_path / "index.sqlite"
    for n in (0, 1, 2, 30, 57, 58, 59):  # written and pending
        index.upsert([entry(f"d{n}", "bao cao hoi nghi tong ket")])
    index.delete(["d3", "d59", "d40"])
    index.upsert([entry("new", "hoi nghi tong ket nam")])
    assert _found(index, '"hoi nghi tong"', clearance=3)[1] == {"d0", "d1", "d2", "d30", "d57", "d58", "new"}
    for phrase in _phrases(rng, 100):
        words = " ".join(fold_fast(phrase.strip('"')).split())
        want = _by_words(path, f'"{words}"')
        assert _found(index, phrase, clearance=3) == (len(want), want), phrase
    search_sqlite.optimize(index._conn)  # writes the pending pairs
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0] == 0
    conn.close()
    for phrase in _phrases(rng, 50):
        words = " ".join(fold_fast(phrase.strip('"')).split())
        want = _by_words(path, f'"{words}"')
        assert _found(index, phrase, clearance=3) == (len(want), want), phrase


@pytest.mark.parametrize("batch", [1, 1000])  # every pair written / every document pending
def test_contract_corpus_on_either_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    reference = SqliteSearchIndex(tmp_path / "reference.sqlite")
    reference.upsert(CORPUS)
    monkeypatch.setattr(write, "PAIRS_BATCH", batch)
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    for e in CORPUS:
        index.upsert([e])
    queries = [*QUERIES, '"cong tac van thu"', '"ban thuong vu" "thanh uy"', '"Đà Nẵng"', '"hoà giải"',
               '"phuong an bao ve"', '"15-NQ/TU"', *HOSTILE]
    for query in queries:
        for clearance in (0, 1, 3):
            for rank_df in (2000, 0):
                monkeypatch.setattr(ranking, "RANK_DF", rank_df)
                a = reference.search(SearchRequest(query=query, limit=50, clearance=clearance, facets=True))
                b = index.search(SearchRequest(query=query, limit=50, clearance=clearance, facets=True))
                assert (a.total, [h.id for h in a.hits], a.facets) == (b.total, [h.id for h in b.hits], b.facets)
    reference.close()
    index.close()


def test_a_layout_6_index_is_rebuilt_with_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    index.upsert(CORPUS)
    index.close()
    conn = sqlite3.connect(path, isolation_level=None)  # as layout 6 left it: no pairs tables
    conn.execute("DROP TABLE search_pairs")
    conn.execute("DROP TABLE search_pairs_pending")
    conn.execute("UPDATE meta SET value = '6' WHERE key = 'search_layout'")
    conn.close()
    monkeypatch.setattr(write, "PAIRS_BATCH", 2)
    index = SqliteSearchIndex(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'search_layout'").fetchone()[0] == search_sqlite.LAYOUT
    assert conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0] < len(CORPUS)
    conn.close()
    assert _found(index, '"cong tac van thu"', clearance=3)[1] == {"nq15", "bc115"}
    assert _found(index, '"ban thuong vu"', clearance=0)[1] == {"nq15", "bc115"}
    index.close()


def _all_results(index: SqliteSearchIndex, queries: list[str]) -> list[tuple[int, list[str]]]:
    out = []
    for query in queries:
        for clearance in (0, 3):
            result = index.search(SearchRequest(query=query, limit=1000, clearance=clearance, facets=True))
            out.append((result.total, sorted(h.id for h in result.hits)))
    return out


def test_compacting_merges_every_index_into_one_segment_and_finds_the_same(
        random_index: tuple[SqliteSearchIndex, random.Random]) -> None:
    index, rng = random_index
    queries = [*_phrases(rng, 40), "cong tac", "dang bo 15", "15-NQ/TU", *QUERIES[:20]]
    conn = index._conn
    before = _all_results(index, queries)
    segments = search_sqlite.segment_counts(conn)
    assert segments["search_fts"] > 1  # one commit per document left many
    assert conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0] > 0
    steps = search_sqlite.compact(conn, index._lock)
    assert steps >= 1
    after = search_sqlite.segment_counts(conn)
    assert after["search_fts"] == after["search_pairs"] == 1 and after["search_head"] <= 1  # (no headings: empty)
    assert conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0] == 0
    assert _all_results(index, queries) == before
    assert search_sqlite.compact(conn, index._lock) == 0  # nothing left to merge
    for table in ("search_fts", "search_head", "search_pairs"):  # raises if the merged index is corrupt
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 0)")


def test_a_writer_between_compaction_steps_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   random_index: tuple[SqliteSearchIndex, random.Random]) -> None:
    """Compaction runs in steps, each its own transaction: a document written between two steps (another
    writer taking the lock) is indexed and found, and the index ends merged."""
    index, _ = random_index
    monkeypatch.setattr(compaction, "COMPACT_STEP_PAGES", 1)
    written: list[int] = []

    class Interleaving:  # the lock ``compact`` takes: every few acquisitions, another document is written
        def __init__(self) -> None:
            self.n = 0

        def __enter__(self) -> None:
            self.n += 1
            if self.n % 3 == 0 and len(written) < 4:
                written.append(self.n)
                index.upsert([entry(f"late{self.n}", f"tai lieu moi {self.n} cong tac van thu")])
            index._lock.acquire()

        def __exit__(self, *exc: object) -> None:
            index._lock.release()

    steps = search_sqlite.compact(index._conn, Interleaving())  # type: ignore[arg-type]
    assert steps >= 1 and len(written) >= 2
    for n in written:
        assert _found(index, f'"tai lieu moi {n}"') == (1, {f"late{n}"})
    search_sqlite.compact(index._conn, index._lock)
    assert set(search_sqlite.segment_counts(index._conn).values()) <= {0, 1}


def test_worth_compacting_bounds_the_rewrite_to_runs_that_add_a_share_of_a_large_index() -> None:
    always = compaction.COMPACT_ALWAYS_UP_TO
    assert not search_sqlite.worth_compacting(10, 0)  # nothing added: nothing to merge
    assert search_sqlite.worth_compacting(always, 1)  # small index: a merge is cheap
    assert not search_sqlite.worth_compacting(1_000_000, 5)  # five documents into a million: FTS5's own merging
    assert search_sqlite.worth_compacting(1_000_000, int(compaction.COMPACT_MIN_SHARE * 1_000_000))


@pytest.mark.parametrize("at", [0, 900, 2500, 6000])  # in the stored folded start, the longer start, past both
def test_a_phrase_snippet_shows_the_phrase_where_it_first_stands(tmp_path: Path, at: int) -> None:
    """A one-phrase query's snippet is the window at the phrase, highlighted with its original diacritics,
    however far into the text it stands and however often its words stand apart before it."""
    filler = "Giá cả thị trường, các trị số và đề xuất, kiến nghị của cơ sở. "  # the words, never the phrase
    text = (filler * 200)[:at] + " Ban Thường vụ đã có giá trị, đề nghị các cấp thực hiện. " + filler * 20
    index = SqliteSearchIndex(tmp_path / "index.sqlite")
    try:
        index.upsert([entry("d1", text), entry("d2", filler * 30)])
        for query in ('"gia tri de nghi"', '"giá trị đề nghị"', '"GIÁ TRỊ, ĐỀ NGHỊ"'):
            result = index.search(SearchRequest(query=query, limit=10))
            assert [h.id for h in result.hits] == ["d1"]
            hit = result.hits[0]
            assert "giá trị, đề nghị" in hit.snippet, (query, hit.snippet)
            marked = [hit.snippet[s:e] for s, e in hit.highlights]
            assert {"giá", "trị", "đề", "nghị"} <= set(marked), marked
        words = index.search(SearchRequest(query="gia tri de nghi", limit=10))  # words, not a phrase: unchanged
        assert {h.id for h in words.hits} == {"d1", "d2"}
    finally:
        index.close()
