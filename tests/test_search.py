from pathlib import Path

import pytest

from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.query import parse_query
from storage.catalog import SqliteCatalog


def _manifest(doc_id: str, text: str, **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=f"{doc_id}.tif", batch="b", status="done",
        created_at="2026-01-01T00:00:00+00:00",
        pages=[PageRecord(number=1, text=text, confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
    )


@pytest.fixture()
def catalog(tmp_path: Path) -> SqliteCatalog:
    cat = SqliteCatalog(tmp_path / "catalog.sqlite")
    cat.commit_document(_manifest("aaa", "NGHỊ QUYẾT về công tác văn thư, lưu trữ của Đảng bộ thành phố Đà Nẵng",
                                  code_number="15", code_notation="NQ/TU", subject="về công tác văn thư, lưu trữ"),
                        "documents/aaa/document.json")
    cat.commit_document(_manifest("bbb", "BÁO CÁO kết quả đào tạo cán bộ. Căn cứ Nghị quyết số 15-NQ/TU ngày 1-2-2020",
                                  code_number="115", code_notation="BC/TU", subject="kết quả đào tạo cán bộ"),
                        "documents/bbb/document.json")
    cat.commit_document(_manifest("ccc", "Kế hoạch hòa giải ở cơ sở; thủy lợi", code_number="7",
                                  code_notation="KH/TU"), "documents/ccc/document.json")
    return cat


def ids(cat: SqliteCatalog, q: str) -> list[str]:
    return [h.id for h in cat.search(parse_query(q), limit=10).hits]


def test_unaccented_query_finds_accented_text(catalog: SqliteCatalog) -> None:
    assert ids(catalog, "cong tac van thu luu tru") == ["aaa"]
    assert ids(catalog, "dang bo thanh pho da nang") == ["aaa"]


def test_tone_placement_variants_match(catalog: SqliteCatalog) -> None:
    assert ids(catalog, "hoà giải") == ids(catalog, "hòa giải") == ["ccc"]
    assert ids(catalog, "thuỷ lợi") == ["ccc"]


def test_number_lookup_ranks_its_document_first(catalog: SqliteCatalog) -> None:
    assert ids(catalog, "15-NQ/TU")[0] == "aaa"  # bbb only cites it
    assert ids(catalog, "15-NQ")[0] == "aaa"
    assert ids(catalog, "115-BC/TU") == ["bbb"]


def test_snippet_shows_original_diacritics_with_highlights(catalog: SqliteCatalog) -> None:
    hit = catalog.search(parse_query("dao tao can bo"), limit=1).hits[0]
    marked = [hit.snippet[s:e] for s, e in hit.highlights]
    assert "đào" in marked and "tạo" in marked and "cán" in marked
    assert hit.metadata["code_notation"] == "BC/TU"


def test_recommitting_a_document_replaces_its_rows(catalog: SqliteCatalog) -> None:
    catalog.commit_document(_manifest("ccc", "Kế hoạch trồng cây xanh", code_number="7", code_notation="KH/TU"),
                            "documents/ccc/document.json")
    assert ids(catalog, "hoa giai") == []
    assert ids(catalog, "trong cay xanh") == ["ccc"]
    assert catalog.count() == 3


@pytest.mark.parametrize("q", ['"', "AND OR NOT", "* ^ ( ) : -", "\x00\x01", "a" * 10_000, "NEAR(a b)", "'; DROP"])
def test_hostile_queries_never_raise(catalog: SqliteCatalog, q: str) -> None:
    result = catalog.search(parse_query(q), limit=5)
    assert result.total >= 0


def test_replacing_a_document_keeps_one_index_row(catalog: SqliteCatalog) -> None:
    catalog.commit_document(_manifest("aaa", "Nội dung mới: chuyển đổi số", code_number="15", code_notation="NQ/TU"),
                            "documents/aaa/document.json")
    assert ids(catalog, "chuyen doi so") == ["aaa"]
    assert ids(catalog, "cong tac van thu luu tru") == []
    conn = catalog._conn
    assert conn.execute("SELECT count(*) FROM fts").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM fts f JOIN doc_text t ON t.rowid = f.rowid AND t.id = f.id"
                        ).fetchone()[0] == 3


def test_index_of_the_older_layout_is_relinked_on_open(catalog: SqliteCatalog, tmp_path: Path) -> None:
    before = {q: ids(catalog, q) for q in ("cong tac van thu", "15-NQ/TU", "hoa giai")}
    conn = catalog._conn  # an index written before fts rowids followed doc_text rowids
    conn.execute("DELETE FROM fts")
    for n, (doc_id,) in enumerate(conn.execute("SELECT id FROM doc_text").fetchall()):
        conn.execute("INSERT INTO fts(rowid, id, code, title, body) VALUES (?, ?, '', '', '')", (1000 + n, doc_id))
    conn.execute("DELETE FROM meta WHERE key = 'search_layout'")
    catalog.close()
    reopened = SqliteCatalog(tmp_path / "catalog.sqlite")
    assert {q: ids(reopened, q) for q in before} == before
