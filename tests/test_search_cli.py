"""``sohoa search``: filters, sort, facets and the JSON contract (total, hits[id, source, score, snippet,
highlights, metadata], facets), on a catalog filled directly (no OCR)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.queries import search_archive, search_filters
from flows.wiring import CATALOG_FILE
from interfaces.cli import main
from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.search import UNCLASSIFIED
from schemas.settings import Settings
from storage.catalog import SqliteCatalog
from storage.search_sqlite import SqliteIndexWriter


def _manifest(doc_id: str, text: str, *, batch: str = "lo-1", file_code: str | None = None,
              **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=f"{doc_id}.tif", batch=batch, status="done",
        created_at="2026-01-01T00:00:00+00:00", file_code=file_code,
        pages=[PageRecord(number=1, text=text, confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
    )


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    catalog = SqliteCatalog(tmp_path / CATALOG_FILE, indexer=SqliteIndexWriter())
    docs = [
        _manifest("nq15", "NGHỊ QUYẾT về công tác văn thư, lưu trữ", code_number="15", code_notation="NQ/TU",
                  type_name="Nghị quyết", issued_date="2020-03-05", organ_name="Thành ủy Đà Nẵng",
                  file_code="H49.1"),
        _manifest("bc115", "BÁO CÁO công tác đào tạo. Căn cứ Nghị quyết số 15-NQ/TU", code_number="115",
                  code_notation="BC/TU", type_name="Báo cáo", issued_date="2021-06-30",
                  organ_name="Thành ủy Đà Nẵng", file_code="H49.1"),
        _manifest("kh7", "KẾ HOẠCH công tác thủy lợi", code_number="7", code_notation="KH/QU", type_name="Kế hoạch",
                  issued_date="2019-11-20", organ_name="Quận ủy Hải Châu", batch="lo-2"),
        _manifest("mat1", "NGHỊ QUYẾT MẬT về công tác quốc phòng", code_number="21", code_notation="NQ/TU",
                  type_name="Nghị quyết", issued_date="2018-05-01", classification="Mật"),
    ]
    for m in docs:
        catalog.commit_document(m, f"documents/{m.id}/document.json")
    catalog.close()
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["search", *args, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def ids(result: dict[str, object]) -> list[str]:
    hits = result["hits"]
    assert isinstance(hits, list)
    return [str(h["id"]) for h in hits]


def test_json_contract_keeps_its_fields(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "cong tac van thu", "--archive", str(archive))
    assert result["total"] == 1 and result["facets"] == {}
    hit = result["hits"][0]  # type: ignore[index]
    assert set(hit) == {"id", "source", "score", "snippet", "highlights", "metadata"}
    assert hit["id"] == "nq15" and hit["source"] == "nq15.tif" and hit["metadata"]["code_notation"] == "NQ/TU"


def test_filters_sort_and_facets(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = str(archive)
    assert set(ids(run(capsys, "cong tac", "--archive", a, "--type", "Nghị quyết"))) == {"nq15", "mat1"}
    assert set(ids(run(capsys, "", "--archive", a, "--organ", "Thành ủy Đà Nẵng"))) == {"nq15", "bc115"}
    assert ids(run(capsys, "", "--archive", a, "--classification", "Mật")) == ["mat1"]
    assert set(ids(run(capsys, "", "--archive", a, "--classification", UNCLASSIFIED))) == {"nq15", "bc115", "kh7"}
    assert ids(run(capsys, "", "--archive", a, "--batch", "lo-2")) == ["kh7"]
    assert set(ids(run(capsys, "", "--archive", a, "--file-code", "H49.1"))) == {"nq15", "bc115"}
    assert ids(run(capsys, "", "--archive", a, "--year-from", "2020", "--year-to", "2020")) == ["nq15"]
    assert ids(run(capsys, "", "--archive", a, "--from", "2019-01-01", "--to", "2020-12-31",
                   "--sort", "date_asc")) == ["kh7", "nq15"]
    assert ids(run(capsys, "cong tac", "--archive", a, "--sort", "date_desc")) == ["bc115", "nq15", "kh7", "mat1"]
    faceted = run(capsys, "cong tac", "--archive", a, "--facets", "--limit", "1")
    assert faceted["total"] == 4 and len(ids(faceted)) == 1
    facets = faceted["facets"]
    assert isinstance(facets, dict)
    assert {f["value"]: f["count"] for f in facets["type_name"]} == {"Nghị quyết": 2, "Báo cáo": 1, "Kế hoạch": 1}
    assert {f["value"]: f["count"] for f in facets["classification"]} == {UNCLASSIFIED: 3, "Mật": 1}


def test_number_lookup_and_text_output(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ids(run(capsys, "Số 15-NQ/TU", "--archive", str(archive)))[0] == "nq15"
    capsys.readouterr()
    assert main(["search", "cong tac", "--archive", str(archive), "--facets"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 văn bản khớp với «cong tac»") and "Loại văn bản: Nghị quyết (2)" in out


def test_a_bad_date_is_a_usage_error(archive: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "x", "--archive", str(archive), "--from", "2020-13-45"])
    assert exc.value.code == 2


def test_search_archive_takes_filters_as_a_mapping(archive: Path) -> None:
    settings = Settings(archive=archive)  # type: ignore[call-arg]
    found = search_archive(settings, "", filters={"type": "Nghị quyết", "year": 2018}, clearance=1)
    assert [h.id for h in found.hits] == ["mat1"]
    assert search_archive(settings, "", filters={"type": "Nghị quyết"}, clearance=0).total == 1
    assert search_filters({"organ": "Quận ủy Hải Châu"}).organ_name == ["Quận ủy Hải Châu"]
