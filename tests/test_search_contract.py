"""The search contract, run against every search backend: embedded SQLite FTS5 and Elasticsearch (stand-in).

Written from the issue's query semantics; a backend is done when it passes all of it. Documents are built
directly (no OCR): the index only needs ``IndexEntry`` values.
"""

from __future__ import annotations

import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.search import UNCLASSIFIED, IndexEntry, SearchFilters, SearchRequest
from storage.search_index import SearchIndex


def entry(doc_id: str, text: str, *, classification: str | None = None, batch: str = "lo-1",
          file_code: str | None = None, **md: object) -> IndexEntry:
    issued = md.get("issued_date")
    metadata = {"code_number": None, "code_notation": None, "type_name": None, "issued_date": None,
                "organ_name": None, "subject": None, "signer": None, "classification": classification, **md}
    level = {None: 0, "Mật": 1, "Tối mật": 2, "Tuyệt mật": 3}[classification]
    return IndexEntry(id=doc_id, source=f"{doc_id}.tif", batch=batch, file_code=file_code, status="done",
                      metadata=metadata, text=text, issued_date=issued if isinstance(issued, str) else None,
                      year=int(issued[:4]) if isinstance(issued, str) else None, secrecy_level=level)


CORPUS = [
    entry("nq15", "ĐẢNG BỘ THÀNH PHỐ ĐÀ NẴNG. Số 15-NQ/TU. NGHỊ QUYẾT về công tác văn thư, lưu trữ của Đảng bộ "
          "thành phố. Ban Thường vụ Thành ủy quyết định tăng cường hòa giải ở cơ sở.",
          code_number="15", code_notation="NQ/TU", type_name="Nghị quyết", issued_date="2020-03-05",
          organ_name="Thành ủy Đà Nẵng", subject="về công tác văn thư, lưu trữ", file_code="H49.1"),
    entry("bc115", "BÁO CÁO kết quả đào tạo cán bộ năm 2021. Căn cứ Nghị quyết số 15-NQ/TU ngày 5-3-2020 của Ban "
          "Thường vụ Thành ủy về công tác văn thư.",
          code_number="115", code_notation="BC/TU", type_name="Báo cáo", issued_date="2021-06-30",
          organ_name="Thành ủy Đà Nẵng", subject="kết quả đào tạo cán bộ", file_code="H49.1"),
    entry("kh7", "KẾ HOẠCH thủy lợi và phòng chống thiên tai. Hoa hồng trồng ở công viên. Hóa học ứng dụng.",
          code_number="7", code_notation="KH/QU", type_name="Kế hoạch", issued_date="2019-11-20",
          organ_name="Quận ủy Hải Châu", subject="thủy lợi và phòng chống thiên tai", batch="lo-2"),
    entry("cv9", "CÔNG VĂN V/v tổ chức hội nghị. Giữ gìn hoà bình, hoà giải mâu thuẫn.",
          code_number="9", code_notation="CV/QU", type_name="Công văn", issued_date="2022-01-10",
          organ_name="Quận ủy Hải Châu", subject="V/v tổ chức hội nghị", batch="lo-2"),
    entry("mat1", "NGHỊ QUYẾT MẬT về công tác quốc phòng: phương án bảo vệ kho vũ khí tuyệt đối bí mật.",
          classification="Mật", code_number="21", code_notation="NQ/TU", type_name="Nghị quyết",
          issued_date="2018-05-01", organ_name="Thành ủy Đà Nẵng", subject="về công tác quốc phòng"),
    entry("tmat2", "KẾT LUẬN TỐI MẬT về nhân sự: phương án bảo vệ kho lưu trữ bí mật nhà nước.",
          classification="Tối mật", code_number="3", code_notation="KL/TU", type_name="Kết luận",
          issued_date="2017-09-09", organ_name="Thành ủy Đà Nẵng", subject="về nhân sự"),
]
SECRET_WORDS = "kho vu khi"  # only in the classified documents
CLEARED = 3


def make_sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> SearchIndex:
    from storage.search_sqlite import SqliteSearchIndex

    return SqliteSearchIndex(tmp_path / "index.sqlite")


def make_es(tmp_path: Path, request: pytest.FixtureRequest) -> SearchIndex:
    """An ``ElasticsearchIndex`` on the osmem stand-in (session server), behind its own alias; dropped afterwards."""
    from storage.search_es import ElasticsearchIndex

    osmem = request.getfixturevalue("osmem")
    alias = f"sohoa-test-{uuid.uuid4().hex[:12]}"
    idx = ElasticsearchIndex(osmem.url, index=alias, node_class=osmem.node_class)

    def drop() -> None:  # after the index fixture has closed idx: a client of its own
        cleaner = ElasticsearchIndex(osmem.url, index=alias, node_class=osmem.node_class)
        cleaner.client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        cleaner.close()

    request.addfinalizer(drop)
    return idx


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], SearchIndex]] = {"sqlite": make_sqlite, "es": make_es}


@pytest.fixture(params=sorted(BACKENDS))
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    idx = BACKENDS[request.param](tmp_path, request)
    idx.upsert(CORPUS)
    yield idx
    idx.close()


def search(idx: SearchIndex, query: str = "", *, clearance: int = CLEARED, **kw: object) -> list[str]:
    return [h.id for h in idx.search(SearchRequest(query=query, clearance=clearance, limit=50, **kw)).hits]  # type: ignore[arg-type]


# --- folding and matching ----------------------------------------------------------------------------------


def test_unaccented_and_accented_queries_find_the_same_documents(index: SearchIndex) -> None:
    assert set(search(index, "cong tac van thu")) == set(search(index, "công tác văn thư")) == {"nq15", "bc115"}
    assert search(index, "dao tao can bo") == ["bc115"]
    assert search(index, "ĐÀ NẴNG")[0] == "nq15" and "nq15" in search(index, "da nang")


def test_nfd_input_and_tone_placement_variants_match(index: SearchIndex) -> None:
    nfd = unicodedata.normalize("NFD", "thủy lợi")
    assert search(index, nfd) == search(index, "thuỷ lợi") == search(index, "thủy lợi") == ["kh7"]
    assert set(search(index, "hoà giải")) == set(search(index, "hòa giải")) == {"nq15", "cv9"}


def test_exact_diacritics_rank_above_folded_matches(index: SearchIndex) -> None:
    assert search(index, "hoa")[:1] != []  # hoa, hòa, hoà, hóa all fold to hoa
    assert search(index, "hòa")[0] in {"nq15", "cv9"}  # hòa/hoà, not hoa hồng or hóa học
    assert search(index, "hóa học")[0] == "kh7"
    ranked = search(index, "hồng")
    assert ranked and ranked[0] == "kh7"


def test_quoted_phrase_matches_words_in_sequence_only(index: SearchIndex) -> None:
    assert set(search(index, '"van thu luu tru"')) == {"nq15"}
    assert search(index, '"luu tru van thu"') == []
    assert set(search(index, '"phương án bảo vệ kho"')) == {"mat1", "tmat2"}


@pytest.mark.parametrize("query", ["15-NQ/TU", "15-NQ", "NQ/TU 15", "Số 15-NQ/TU", "15 nq tu"])
def test_number_lookup_ranks_its_document_first(index: SearchIndex, query: str) -> None:
    found = search(index, query)
    assert found and found[0] == "nq15", found  # bc115 cites 15-NQ/TU but is not it


def test_snippets_keep_original_diacritics_and_highlight_the_words(index: SearchIndex) -> None:
    hit = index.search(SearchRequest(query="dao tao can bo", clearance=CLEARED)).hits[0]
    marked = [hit.snippet[s:e] for s, e in hit.highlights]
    assert {"đào", "tạo", "cán", "bộ"} <= set(marked)
    assert hit.metadata["code_notation"] == "BC/TU" and hit.source == "bc115.tif"


# --- filters, facets, sort, pagination ---------------------------------------------------------------------


def test_filters_restrict_hits_and_total(index: SearchIndex) -> None:
    f = SearchFilters
    assert set(search(index, "", filters=f(type_name=["Nghị quyết"]))) == {"nq15", "mat1"}
    assert set(search(index, "", filters=f(organ_name=["Quận ủy Hải Châu"]))) == {"kh7", "cv9"}
    assert set(search(index, "", filters=f(classification=[UNCLASSIFIED]))) == {"nq15", "bc115", "kh7", "cv9"}
    assert set(search(index, "", filters=f(classification=["Mật", "Tối mật"]))) == {"mat1", "tmat2"}
    assert set(search(index, "", filters=f(batch=["lo-2"]))) == {"kh7", "cv9"}
    assert set(search(index, "", filters=f(file_code=["H49.1"]))) == {"nq15", "bc115"}
    assert set(search(index, "", filters=f(year_from=2020, year_to=2021))) == {"nq15", "bc115"}
    assert set(search(index, "", filters=f(date_from="2019-11-20", date_to="2020-03-05"))) == {"kh7", "nq15"}
    assert search(index, "cong tac", filters=f(type_name=["Báo cáo"], year_from=2021)) == ["bc115"]
    result = index.search(SearchRequest(query="cong tac", filters=f(type_name=["Nghị quyết"]), clearance=CLEARED))
    assert result.total == 2


def test_facet_counts_cover_all_visible_matches(index: SearchIndex) -> None:
    result = index.search(SearchRequest(query="", facets=True, limit=1, clearance=CLEARED))
    assert result.total == 6 and len(result.hits) == 1
    counts = {name: {f.value: f.count for f in values} for name, values in result.facets.items()}
    assert counts["type_name"] == {"Nghị quyết": 2, "Báo cáo": 1, "Kế hoạch": 1, "Công văn": 1, "Kết luận": 1}
    assert counts["year"] == {"2017": 1, "2018": 1, "2019": 1, "2020": 1, "2021": 1, "2022": 1}
    assert counts["organ_name"] == {"Thành ủy Đà Nẵng": 4, "Quận ủy Hải Châu": 2}
    assert counts["classification"] == {UNCLASSIFIED: 4, "Mật": 1, "Tối mật": 1}
    assert counts["batch"] == {"lo-1": 4, "lo-2": 2}
    assert counts["file_code"] == {"H49.1": 2}
    filtered = index.search(SearchRequest(query="cong tac", facets=True, clearance=CLEARED,
                                          filters=SearchFilters(organ_name=["Thành ủy Đà Nẵng"])))
    assert {f.value: f.count for f in filtered.facets["type_name"]} == {"Nghị quyết": 2, "Báo cáo": 1}


def test_sort_by_date_and_stable_pagination(index: SearchIndex) -> None:
    assert search(index, "", sort="date_desc") == ["cv9", "bc115", "nq15", "kh7", "mat1", "tmat2"]
    assert search(index, "", sort="date_asc") == ["tmat2", "mat1", "kh7", "nq15", "bc115", "cv9"]
    pages = [index.search(SearchRequest(query="", sort="date_desc", limit=2, offset=o, clearance=CLEARED))
             for o in (0, 2, 4, 6)]
    assert [h.id for p in pages for h in p.hits] == ["cv9", "bc115", "nq15", "kh7", "mat1", "tmat2"]
    assert {p.total for p in pages} == {6} and pages[-1].hits == []
    relevance = [index.search(SearchRequest(query="cong tac", limit=1, offset=o, clearance=CLEARED)).hits
                 for o in range(4)]
    assert len({h[0].id for h in relevance if h}) == len([h for h in relevance if h])  # no duplicates


# --- access ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("clearance", "visible"), [(0, set()), (1, {"mat1"}), (2, {"mat1", "tmat2"})])
def test_clearance_is_applied_inside_the_query(index: SearchIndex, clearance: int, visible: set[str]) -> None:
    result = index.search(SearchRequest(query=SECRET_WORDS, clearance=clearance, facets=True, limit=50))
    assert {h.id for h in result.hits} == visible & {"mat1"}  # only mat1 mentions the weapons store
    assert result.total == len(visible & {"mat1"})
    secrets = index.search(SearchRequest(query='"phuong an bao ve kho"', clearance=clearance, facets=True))
    assert {h.id for h in secrets.hits} == visible and secrets.total == len(visible)
    everything = index.search(SearchRequest(query="", clearance=clearance, facets=True, limit=50))
    assert everything.total == 4 + len(visible)
    levels = {f.value: f.count for f in everything.facets["classification"]}
    assert set(levels) == {UNCLASSIFIED} | {{"mat1": "Mật", "tmat2": "Tối mật"}[v] for v in visible}
    for hit in everything.hits:
        assert hit.id in visible | {"nq15", "bc115", "kh7", "cv9"}
    filtered = index.search(SearchRequest(query="", clearance=clearance, facets=True,
                                          filters=SearchFilters(classification=["Mật", "Tối mật"])))
    assert filtered.total == len(visible) and sum(f.count for f in filtered.facets["type_name"]) == len(visible)


# --- hostile input -----------------------------------------------------------------------------------------


HOSTILE = ['"unbalanced', 'a "b', "AND OR NOT", "NEAR(a b)", "*", "^x", "a:b", "(((", ")", "-", "+", "---",
           "'; DROP TABLE documents; --", "\x00\x01\x1f", "\u202e\u200b", "x" * 10_000, "hòa " * 3_000,
           "15-NQ/TU" * 500, "\\", "{}[]", "title:x", "body: *", '""', "/", "%_%", "NQ/", "/TU"]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_input_gives_results_or_nothing_never_an_error(index: SearchIndex, query: str) -> None:
    result = index.search(SearchRequest(query=query, clearance=0, facets=True))
    assert result.total >= len(result.hits) >= 0
    assert all(h.id in {"nq15", "bc115", "kh7", "cv9"} for h in result.hits)


# --- writes --------------------------------------------------------------------------------------------------


def test_upsert_replaces_delete_removes_replace_all_resets(index: SearchIndex) -> None:
    index.upsert([entry("kh7", "KẾ HOẠCH chuyển đổi số", type_name="Kế hoạch", issued_date="2019-11-20")])
    assert search(index, "chuyen doi so") == ["kh7"] and search(index, "thuy loi") == []
    index.delete(["cv9"])
    assert "cv9" not in search(index, "") and index.ids() == {"nq15", "bc115", "kh7", "mat1", "tmat2"}
    assert index.replace_all(iter([entry("new1", "Thông báo kết luận hội nghị", issued_date="2023-01-01")])) == 1
    assert index.ids() == {"new1"} and search(index, "hoi nghi") == ["new1"] and search(index, "cong tac") == []


def test_readers_see_complete_documents_while_a_writer_indexes(index: SearchIndex) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                result = index.search(SearchRequest(query="bao cao tien do", clearance=CLEARED, limit=5))
                assert result.total >= len(result.hits)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for r in readers:
        r.start()
    for n in range(40):
        index.upsert([entry(f"w{n}-{uuid.uuid4().hex[:6]}", f"BÁO CÁO tiến độ số {n}", type_name="Báo cáo")])
    stop.set()
    for r in readers:
        r.join()
    assert not errors, errors[0]
    assert index.search(SearchRequest(query="bao cao tien do", clearance=CLEARED)).total == 40
