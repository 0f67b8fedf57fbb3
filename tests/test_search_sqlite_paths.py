"""The embedded index's two ranking paths return the same documents.

Items found in at most ``RANK_DF`` documents are ranked by bm25 (the contract suite's small corpus only takes
this path); when every item is more common, matches come heading first then newest first, and totals above
``COUNT_EXACT`` are estimated. These tests force the second path on the contract corpus by lowering the
thresholds, and check that only the order (and a large total's exactness) changes, never which documents match
or who may see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.search import SearchFilters, SearchRequest
from storage.search_sqlite import SqliteSearchIndex
from storage.search_sqlite import query as ranking
from tests.test_search_contract import CORPUS, HOSTILE, entry

QUERIES = ["cong tac van thu", "công tác", "hòa", "hoa", "15-NQ/TU", "15-NQ", "NQ/TU 15", "15 nq tu",
           '"phuong an bao ve kho"', "kho vu khi", "da nang", "thanh uy", "nghi quyet cong tac", "xyz",
           "cong tac xyz"]


@pytest.fixture()
def index(tmp_path: Path) -> Iterator[SqliteSearchIndex]:
    idx = SqliteSearchIndex(tmp_path / "index.sqlite")
    idx.upsert(CORPUS)
    yield idx
    idx.close()


def run(index: SqliteSearchIndex, query: str, **kw: object) -> tuple[int, list[str]]:
    result = index.search(SearchRequest(query=query, limit=50, **kw))  # type: ignore[arg-type]
    return result.total, [h.id for h in result.hits]


@pytest.mark.parametrize("rank_df", [0, 1, 2])  # 0: every item common; 1, 2: some common, some not
def test_both_paths_find_the_same_documents(index: SqliteSearchIndex, monkeypatch: pytest.MonkeyPatch,
                                            rank_df: int) -> None:
    cases = [(q, clearance, filters) for q in QUERIES for clearance in (0, 1, 3)
             for filters in (SearchFilters(), SearchFilters(organ_name=["Thành ủy Đà Nẵng"]))]
    expected = {(q, c, f.model_dump_json()): run(index, q, clearance=c, filters=f) for q, c, f in cases}
    monkeypatch.setattr(ranking, "RANK_DF", rank_df)
    for q, c, f in cases:
        total, ids = run(index, q, clearance=c, filters=f)
        want_total, want_ids = expected[(q, c, f.model_dump_json())]
        assert total == want_total and sorted(ids) == sorted(want_ids) and len(set(ids)) == len(ids), (q, c, f)


def test_common_path_ranks_the_number_lookup_then_the_heading(index: SqliteSearchIndex,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "RANK_DF", 0)
    for q in ("15-NQ/TU", "15-NQ", "Số 15-NQ/TU", "NQ/TU 15"):
        assert run(index, q, clearance=3)[1][0] == "nq15"
    assert run(index, "bao cao", clearance=3)[1][0] == "bc115"  # "Báo cáo" is its type: its heading
    assert run(index, "hoa", clearance=3)[1] == ["cv9", "kh7", "nq15"]  # then newest indexed first


def test_common_path_pages_without_repeats(index: SqliteSearchIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "RANK_DF", 0)
    pages = [index.search(SearchRequest(query="thanh", limit=2, offset=o, clearance=3)) for o in range(0, 8, 2)]
    ids = [h.id for p in pages for h in p.hits]
    assert len(ids) == len(set(ids)) == pages[0].total


def test_large_totals_are_estimated_above_count_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = SqliteSearchIndex(tmp_path / "index.sqlite")
    idx.upsert([entry(f"d{n}", f"Báo cáo số {n} về công tác", classification="Mật" if n % 4 == 0 else None)
                for n in range(200)])
    monkeypatch.setattr(ranking, "RANK_DF", 0)
    monkeypatch.setattr(ranking, "COUNT_EXACT", 20)
    for clearance, visible in ((0, 150), (3, 200)):
        result = idx.search(SearchRequest(query="cong tac", clearance=clearance, limit=5))
        assert abs(result.total - visible) <= visible * 0.15 and len(result.hits) == 5
        assert not result.total_exact
        deep = idx.search(SearchRequest(query="cong tac", clearance=clearance, limit=10, offset=visible - 5))
        assert len(deep.hits) == 5  # pages beyond the newest matches read on
    exact = idx.search(SearchRequest(query="cong tac", clearance=3, facets=True))
    assert exact.total == 200 and exact.total_exact  # facets count every match
    idx.close()


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_input_on_the_common_path(index: SqliteSearchIndex, monkeypatch: pytest.MonkeyPatch,
                                          query: str) -> None:
    monkeypatch.setattr(ranking, "RANK_DF", 0)
    result = index.search(SearchRequest(query=query, clearance=0, facets=True))
    assert result.total >= len(result.hits) and all(h.id in {"nq15", "bc115", "kh7", "cv9"} for h in result.hits)


def test_common_path_puts_the_exact_heading_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = SqliteSearchIndex(tmp_path / "index.sqlite")
    idx.upsert([entry("d1", "Công văn", subject="về hóa chất"), entry("d2", "Công văn", subject="về hòa giải"),
                entry("d3", "Công văn về hoà giải ở cơ sở")])  # d3: newest, "hoà" in its text only
    monkeypatch.setattr(ranking, "RANK_DF", 0)
    result = idx.search(SearchRequest(query="hoà", clearance=3))
    assert [h.id for h in result.hits] == ["d2", "d1", "d3"] and [h.score for h in result.hits] == [2.0, 1.0, 0.0]
    assert run(idx, "hoa", clearance=3)[1] == ["d2", "d1", "d3"]  # no exact words: headings, newest first
    idx.close()


@pytest.mark.parametrize("compacted", [False, True])  # pairs pending / written
def test_a_query_of_phrases_is_ranked_in_tiers_whatever_its_words_frequency(tmp_path: Path,
                                                                           compacted: bool) -> None:
    """A quoted phrase and a number are matched on the pairs and never ranked by bm25 (it would read the positions
    of every document holding their words): the number-lookup tier, the heading, then newest first; a document
    naming the phrase three times ranks no higher than a newer one naming it once."""
    from storage.search_sqlite import compact

    idx = SqliteSearchIndex(tmp_path / "index.sqlite")
    idx.upsert([
        entry("often", "Kho lưu trữ chuyên dụng. Kiểm tra kho lưu trữ. Sửa kho lưu trữ quý I.", type_name="Báo cáo"),
        entry("heading", "Danh mục hồ sơ nộp lưu.", type_name="Công văn", subject="về kho lưu trữ chuyên dụng"),
        entry("cites", "Thực hiện Nghị quyết số 21-NQ/TU, bố trí kho lưu trữ chuyên dụng.", type_name="Báo cáo"),
        entry("nq21", "Nghị quyết về công tác lưu trữ.", code_number="21", code_notation="NQ/TU",
              type_name="Nghị quyết"),
    ])
    if compacted:
        compact(idx._conn, idx._lock)
    assert run(idx, '"kho luu tru"', clearance=3)[1] == ["heading", "cites", "often"]
    assert run(idx, '"kho lưu trữ chuyên dụng"', clearance=3)[1] == ["heading", "cites", "often"]
    assert run(idx, "21-NQ/TU", clearance=3)[1] == ["nq21", "cites"]
    idx.close()
