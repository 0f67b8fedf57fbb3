"""``sohoa export``: the TT 05/2025 metadata table as CSV (UTF-8 BOM) and XLSX, for all, a batch or a query."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from flows.export import HEADERS, build_table
from interfaces.cli import main
from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from storage.catalog import SqliteCatalog
from storage.search_sqlite import SqliteIndexWriter


def _manifest(doc_id: str, batch: str, text: str, *, reasons: list[str] | None = None,
              **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=f"{doc_id}.tif", batch=batch,
        status="needs_review" if reasons else "done", review_reasons=reasons or [],
        created_at="2026-01-01T00:00:00+00:00",
        pages=[PageRecord(number=1, text=text, confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
    )


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    cat = SqliteCatalog(root / "catalog.sqlite", indexer=SqliteIndexWriter())
    cat.commit_document(_manifest(
        "aaa", "lo-1", "NGHỊ QUYẾT về công tác văn thư, lưu trữ của Đảng bộ thành phố Đà Nẵng",
        code_number="15", code_notation="NQ/TU", type_name="Nghị quyết", type_code="01", issued_date="2020-02-01",
        organ_name="Thành ủy Đà Nẵng", subject="về công tác văn thư, lưu trữ", signer="Nguyễn Văn Hùng",
        signer_title="Bí thư", classification="Mật", urgency="Khẩn", recipients=["Các quận ủy", "Lưu VPTU"],
        page_count=1), "documents/aaa/document.json")
    cat.commit_document(_manifest(
        "bbb", "lo-1", "BÁO CÁO kết quả đào tạo cán bộ năm 2019", code_number="115", code_notation="BC/TU",
        type_name="Báo cáo", type_code="14", issued_date="2020-03-05", subject="kết quả đào tạo cán bộ",
        page_count=1, reasons=["thiếu tên cơ quan", "trang 1: độ tin cậy OCR thấp (60%)"]),
        "documents/bbb/document.json")
    cat.commit_document(_manifest(
        "ccc", "lo-2", "Kế hoạch hòa giải ở cơ sở", code_number="7", code_notation="KH/TU", type_name="Kế hoạch",
        page_count=1), "documents/ccc/document.json")
    cat.close()
    return root


def _csv(path: Path) -> list[list[str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _col(name: str) -> int:
    return HEADERS.index(name)


def test_csv_has_tt05_headers_in_order_and_vietnamese_values(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "vb.csv"
    assert main(["export", "--archive", str(archive), "--out", str(out)]) == 0
    rows = _csv(out)
    assert tuple(rows[0]) == HEADERS
    assert rows[0][:5] == ["Mã định danh văn bản (docId)", "Mã lưu trữ (docCode)", "Số văn bản (codeNumber)",
                           "Ký hiệu văn bản (codeNotation)", "Tên loại văn bản (typeName)"]
    body = {r[_col("Mã sohoa")]: r for r in rows[1:]}
    assert list(body) == ["aaa", "bbb", "ccc"]  # batch, then source order
    nq = body["aaa"]
    assert nq[_col("Số văn bản (codeNumber)")] == "15"
    assert nq[_col("Ký hiệu văn bản (codeNotation)")] == "NQ/TU"
    assert nq[_col("Mã tên loại (typeName)")] == "01"
    assert nq[_col("Ngày, tháng, năm văn bản (issuedDate)")] == "01/02/2020"
    assert nq[_col("Tên cơ quan, tổ chức ban hành (organName)")] == "Thành ủy Đà Nẵng"
    assert nq[_col("Trích yếu nội dung (subject)")] == "về công tác văn thư, lưu trữ"
    assert nq[_col("Ngôn ngữ (language)")] == "Tiếng Việt"
    assert nq[_col("Người ký")] == "Nguyễn Văn Hùng" and nq[_col("Chức vụ người ký")] == "Bí thư"
    assert nq[_col("Độ mật")] == "Mật" and nq[_col("Chế độ sử dụng (mode)")] == "03 - Mật"
    assert nq[_col("Độ khẩn")] == "Khẩn"
    assert nq[_col("Nơi nhận")] == "Các quận ủy; Lưu VPTU"
    assert nq[_col("Mức độ tin cậy (confidenceLevel)")] == "02 - Số hóa"
    assert nq[_col("Trạng thái")] == "Hoàn thành" and nq[_col("Ghi chú (description)")] == ""
    assert nq[_col("Tệp nguồn")] == "aaa.tif"
    bc = body["bbb"]
    assert bc[_col("Chế độ sử dụng (mode)")] == "01 - Công khai"
    assert bc[_col("Trạng thái")] == "Cần xem lại"
    assert bc[_col("Ghi chú (description)")] == "thiếu tên cơ quan; trang 1: độ tin cậy OCR thấp (60%)"
    log = [json.loads(line) for line in (archive / "export-log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert log[-1]["documents"] == 3 and log[-1]["classified"] == 1 and log[-1]["user"]


def test_xlsx_reads_back_with_headers_dates_and_text(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "vb.xlsx"
    assert main(["export", "--format", "xlsx", "--archive", str(archive), "--out", str(out)]) == 0
    ws = load_workbook(out).active
    assert ws is not None
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert tuple(rows[0]) == HEADERS
    assert len(rows) == 4
    nq = rows[1]
    assert nq[_col("Trích yếu nội dung (subject)")] == "về công tác văn thư, lưu trữ"
    assert nq[_col("Ngày, tháng, năm văn bản (issuedDate)")] == datetime(2020, 2, 1)
    assert nq[_col("Số trang (numberOfPage)")] == 1
    assert nq[_col("Mã sohoa")] == "aaa"
    assert rows[3][_col("Ngày, tháng, năm văn bản (issuedDate)")] is None


def test_query_export_contains_only_the_hits(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.csv"
    assert main(["export", "--query", "dao tao can bo", "--archive", str(archive), "--out", str(out)]) == 0
    assert [r[_col("Mã sohoa")] for r in _csv(out)[1:]] == ["bbb"]
    out2 = tmp_path / "q2.xlsx"
    assert main(["export", "--query", "xyzzy qwerty", "--archive", str(archive), "--out", str(out2)]) == 0
    ws = load_workbook(out2).active
    assert ws is not None and ws.max_row == 1  # headers only


def test_batch_export_and_query_within_batch(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.csv"
    assert main(["export", "--batch", "lo-2", "--archive", str(archive), "--out", str(out)]) == 0
    assert [r[_col("Mã sohoa")] for r in _csv(out)[1:]] == ["ccc"]
    assert main(["export", "--batch", "lo-1", "--query", "15-NQ/TU", "--archive", str(archive),
                 "--out", str(out)]) == 0
    assert [r[_col("Mã sohoa")] for r in _csv(out)[1:]] == ["aaa"]


def test_usage_and_not_found_exit_codes(archive: Path, tmp_path: Path) -> None:
    assert main(["export", "--archive", str(archive), "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["export", "--batch", "khong-co", "--archive", str(archive), "--out", str(tmp_path / "x.csv")]) == 6
    assert main(["export", "--archive", str(tmp_path / "none"), "--out", str(tmp_path / "x.csv")]) == 6
    assert main(["export", "--archive", str(archive), "--out", str(tmp_path / "no" / "x.csv")]) == 4
    assert not (tmp_path / "x.csv").exists()


def test_build_table_is_pure_and_keeps_order() -> None:
    from storage.catalog import CatalogEntry

    entries = [CatalogEntry(id=i, sha256="", source=f"{i}.pdf", batch="b", status="done", pages=2,
                            metadata={"issued_date": "không rõ"}, review_reasons=[], manifest_key="")
               for i in ("z", "a")]
    table = build_table(entries)
    assert [r[-1] for r in table.rows] == ["z", "a"]
    assert table.rows[0][_col("Ngày, tháng, năm văn bản (issuedDate)")] == "không rõ"
    assert table.rows[0][_col("Số trang (numberOfPage)")] == 2
