"""Reasons are codes with parameters (``schemas.reasons``), worded in Vietnamese only at the edges; what older
versions stored as Vietnamese sentences (document.json, catalog rows, quarantine records, reports) still reads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from flows.access import Principal, visible_reasons, visible_status
from flows.intake import held_reasons
from pipeline.intake import decide_intake
from pipeline.quality import duplicate_reasons
from pipeline.stamp import stamp_reason
from schemas.document import BatchInfo, DocumentManifest, DocumentResult
from schemas.metadata import DocumentMetadata
from schemas.reasons import (
    Reason,
    ReasonCode,
    codes_json,
    describe,
    describe_all,
    from_legacy_joined,
    from_legacy_text,
    processing_error,
    reason,
    stored_reasons,
)
from storage.catalog import SqliteCatalog

# Sentences written by sohoa before reasons were codes, as they stand in existing archives: code and parameters.
OLD_SENTENCES: list[tuple[str, ReasonCode, dict[str, object]]] = [
    ("trang 3: gần như không đọc được chữ", ReasonCode.PAGE_UNREADABLE, {"page": 3}),
    ("trang 1: độ tin cậy OCR thấp (60%)", ReasonCode.PAGE_LOW_CONFIDENCE, {"page": 1, "confidence": 0.6}),
    ("trang 2: 2,9 % chữ nhận dạng không chắc chắn, cần soát lại", ReasonCode.PAGE_DOUBTFUL_WORDS,
     {"page": 2, "share": 0.029}),
    ("thiếu số/ký hiệu", ReasonCode.MISSING_CODE, {}),
    ("thiếu ngày ban hành", ReasonCode.MISSING_ISSUED_DATE, {}),
    ("thiếu tên loại văn bản", ReasonCode.MISSING_TYPE_NAME, {}),
    ("độ mật chưa chắc chắn: cần lưu trữ viên xác nhận", ReasonCode.SECRECY_UNCERTAIN, {}),
    ("có thể trùng với văn bản 9f2c1e4b7a0d3c5e8f10 (lo 1/nq (bản 2).pdf)", ReasonCode.DUPLICATE_OF,
     {"document_id": "9f2c1e4b7a0d3c5e8f10", "source": "lo 1/nq (bản 2).pdf"}),
    ("dấu độ mật trang 1 vùng [1710, 95, 2240, 260] đọc được «MẶT» → Mật (near_miss): cần lưu trữ viên xác nhận "
     "hoặc hạ mức", ReasonCode.SECRECY_STAMP_UNSURE,
     {"page": 1, "box": [1710, 95, 2240, 260], "read": "MẶT", "level": "Mật", "rule": "near_miss"}),
    ("dấu độ mật trang 1 vùng [10, 20, 30, 40] đọc được «—» → Tuyệt mật (unreadable): cần lưu trữ viên xác nhận "
     "hoặc hạ mức", ReasonCode.SECRECY_STAMP_UNSURE,
     {"page": 1, "box": [10, 20, 30, 40], "read": "", "level": "Tuyệt mật", "rule": "unreadable"}),
    ("trang 2: tên bị dấu đen che, đã đọc bằng đối chiếu danh sách họ tên: cần soát lại",
     ReasonCode.SEAL_NAMES_MATCHED, {"page": 2}),
    ("trang 4: nhận dạng chữ quá thời gian cho phép, trang chỉ được lưu dạng ảnh (chưa có lớp chữ)",
     ReasonCode.OCR_TIMEOUT, {"page": 4}),
    ("tài liệu Mật chưa có phê duyệt chụp (sổ quản lý sao, chụp): bổ sung số quyết định phê duyệt",
     ReasonCode.SECRET_APPROVAL_PENDING, {"mark": "Mật"}),
    ("tài liệu Tối mật chưa có phê duyệt chụp: ghi số quyết định (approval_ref) và người duyệt (approved_by) vào "
     "batch.toml rồi chạy lại", ReasonCode.SECRET_HELD_WITHOUT_APPROVAL, {"mark": "Tối mật"}),
    ("tài liệu Tuyệt mật: không số hóa (Hướng dẫn 40-HD/VPTW) — chỉ số hóa khi có phê duyệt của quản trị "
     "(top_secret_approval_ref trong batch.toml)", ReasonCode.TOP_SECRET_HELD, {"mark": "Tuyệt mật"}),
]

OLD_MANIFEST = """{
 "schema_version": 1,
 "id": "0a1b2c3d4e5f60718293",
 "sha256": "%s",
 "source": "ho-so-1/nq_15.tif",
 "batch": "lo-2024-01",
 "status": "needs_review",
 "review_reasons": [
  "trang 1: độ tin cậy OCR thấp (58%%)",
  "thiếu ngày ban hành",
  "có thể trùng với văn bản 1122334455667788aabb (ho-so-1/nq_15 (1).tif)",
  "ghi chú tay của một phiên bản cũ"
 ],
 "created_at": "2025-11-02T08:15:00+00:00",
 "pages": [{"number": 1, "text": "NGHỊ QUYẾT", "confidence": 0.58, "width": 2480, "height": 3508, "dpi": 300,
            "words": 2, "preprocessing": {}}],
 "metadata": {"code_number": "15", "code_notation": "NQ/TU", "type_name": "Nghị quyết"},
 "files": [],
 "provenance": {"sohoa": "0.9.0"}
}""" % ("ab" * 32)


@pytest.mark.parametrize(("text", "code", "params"), OLD_SENTENCES)
def test_old_sentences_decode_to_their_code_and_word_the_same(text: str, code: ReasonCode,
                                                              params: dict[str, object]) -> None:
    decoded = from_legacy_text(text)
    assert decoded.code is code
    assert decoded.params == params
    assert describe(decoded) == text  # nothing lost: the archive shows what it showed before


def test_every_code_has_a_vietnamese_wording() -> None:
    for code in ReasonCode:
        assert isinstance(describe(Reason(code=code)), str)
    assert describe(reason(ReasonCode.PAGE_LOW_CONFIDENCE, page=2, confidence=0.6234)) == \
        "trang 2: độ tin cậy OCR thấp (62%)"
    assert describe(processing_error("a.pdf", ValueError("hỏng"))) == "lỗi xử lý a.pdf: ValueError: hỏng"


def test_unknown_or_altered_sentences_are_kept_as_written() -> None:
    for text in ("thiếu tên cơ quan", "trang 1: đọc kém", "có thể trùng với văn bản abc", "",
                 "trang 2: 2,90 % chữ nhận dạng không chắc chắn, cần soát lại"):  # would not word back the same
        kept = from_legacy_text(text)
        assert kept == Reason(code=ReasonCode.LEGACY_TEXT, params={"text": text})
        assert describe(kept) == text and kept.document_id is None


def test_reasons_round_trip_as_codes() -> None:
    reasons = [*duplicate_reasons([("abc", "x.pdf")]), reason(ReasonCode.PAGE_DOUBTFUL_WORDS, page=1, share=0.031)]
    stored = json.loads(json.dumps(codes_json(reasons)))
    assert stored[0] == {"code": "duplicate_of", "params": {"document_id": "abc", "source": "x.pdf"}}
    assert stored_reasons(stored) == reasons
    assert describe_all(reasons) == ["có thể trùng với văn bản abc (x.pdf)",
                                     "trang 1: 3,1 % chữ nhận dạng không chắc chắn, cần soát lại"]


def test_an_old_format_document_json_reads_into_codes_and_shows_as_before() -> None:
    manifest = DocumentManifest.model_validate_json(OLD_MANIFEST)
    assert [r.code for r in manifest.review_reasons] == [
        ReasonCode.PAGE_LOW_CONFIDENCE, ReasonCode.MISSING_ISSUED_DATE, ReasonCode.DUPLICATE_OF, ReasonCode.LEGACY_TEXT]
    assert describe_all(manifest.review_reasons) == json.loads(OLD_MANIFEST)["review_reasons"]
    # the access policy works on the decoded parameters: a reader who may not see the other copy loses the reason
    levels = {"1122334455667788aabb": 2}.get
    reader = Principal(name="a", role="archivist", clearance=1)
    shown = visible_reasons(reader, manifest.review_reasons, levels)
    assert [r.code for r in shown] == [ReasonCode.PAGE_LOW_CONFIDENCE, ReasonCode.MISSING_ISSUED_DATE,
                                       ReasonCode.LEGACY_TEXT]
    assert visible_status("needs_review", manifest.review_reasons, shown) == "needs_review"
    # written again, the manifest holds codes, and reads back the same
    again = DocumentManifest.model_validate_json(manifest.model_dump_json())
    assert again == manifest
    assert json.loads(manifest.model_dump_json())["review_reasons"][1] == {"code": "missing_issued_date", "params": {}}


def test_old_catalog_rows_read_into_codes(tmp_path: Path) -> None:
    manifest = DocumentManifest.model_validate_json(OLD_MANIFEST)
    path = tmp_path / "catalog.sqlite"
    catalog = SqliteCatalog(path)
    try:
        catalog.commit_document(manifest, "documents/x/document.json")
        assert catalog.get(manifest.id).review_reasons == manifest.review_reasons  # type: ignore[union-attr]
    finally:
        catalog.close()
    old = json.dumps(json.loads(OLD_MANIFEST)["review_reasons"], ensure_ascii=False)
    with sqlite3.connect(path) as conn:  # a row as an older version wrote it: sentences
        conn.execute("UPDATE documents SET review_reasons = ?", (old,))
    catalog = SqliteCatalog(path)
    try:
        entry = catalog.get(manifest.id)
        assert entry is not None and entry.review_reasons == manifest.review_reasons
    finally:
        catalog.close()


def test_quarantine_records_old_and_new() -> None:
    old = {"doc_id": "x", "reason": "tài liệu Tuyệt mật: không số hóa (Hướng dẫn 40-HD/VPTW) — chỉ số hóa khi có "
           "phê duyệt của quản trị (top_secret_approval_ref trong batch.toml); dấu độ mật trang 1 vùng [1, 2, 3, 4] "
           "đọc được «TUYỆT» → Tuyệt mật (partial): cần lưu trữ viên xác nhận hoặc hạ mức"}
    held = held_reasons(old)
    assert [r.code for r in held] == [ReasonCode.TOP_SECRET_HELD, ReasonCode.SECRECY_STAMP_UNSURE]
    assert "; ".join(describe_all(held)) == old["reason"]
    decision = decide_intake(DocumentMetadata(classification="Tuyệt mật"), BatchInfo())
    assert decision.outcome == "quarantine" and decision.reason == reason(ReasonCode.TOP_SECRET_HELD, mark="Tuyệt mật")
    assert held_reasons({"reasons": codes_json([decision.reason])}) == [decision.reason]  # type: ignore[list-item]
    assert from_legacy_joined("") == []


def test_stamp_reason_carries_its_evidence() -> None:
    r = stamp_reason({"page": 1, "box": (5, 6, 7, 8), "readings": ["MẶI", "MAT"], "level": "Mật", "rule": "fuzzy"})
    assert r.params == {"page": 1, "box": [5, 6, 7, 8], "read": "MẶI", "level": "Mật", "rule": "fuzzy"}
    assert describe(r) == ("dấu độ mật trang 1 vùng [5, 6, 7, 8] đọc được «MẶI» → Mật (fuzzy): cần lưu trữ viên "
                           "xác nhận hoặc hạ mức")


def test_the_report_keeps_its_sentences_and_adds_the_codes() -> None:
    result = DocumentResult(source="a.tif", id="x", status="needs_review", pages=1,
                            review_reason_codes=duplicate_reasons([("abc", "b.tif")]))
    out = json.loads(result.model_dump_json())
    assert out["review_reasons"] == ["có thể trùng với văn bản abc (b.tif)"]  # the JSON contract, unchanged
    assert out["review_reason_codes"] == [{"code": "duplicate_of", "params": {"document_id": "abc", "source": "b.tif"}}]
    assert out["error"] is None and out["failure_code"] is None
    assert DocumentResult.model_validate(out) == result
    failed = DocumentResult(source="a.tif", id=None, status="failed", pages=0,
                            failure_code=processing_error("a.tif", OSError("mất kết nối")))
    assert json.loads(failed.model_dump_json())["error"] == "lỗi xử lý a.tif: OSError: mất kết nối"
    # a report written before codes reads too
    old = {"source": "a.tif", "id": "x", "status": "failed", "pages": 0, "error": "a.tif: tệp hỏng",
           "review_reasons": ["thiếu số/ký hiệu"], "skipped": False}
    read = DocumentResult.model_validate(old)
    assert read.error == "a.tif: tệp hỏng" and read.review_reasons == ["thiếu số/ký hiệu"]
    assert read.review_reason_codes == [Reason(code=ReasonCode.MISSING_CODE)]


OLD_REGISTRY = """
CREATE TABLE batches (id TEXT PRIMARY KEY, folder TEXT NOT NULL, file_code TEXT, fonds TEXT, title TEXT,
    schedule TEXT NOT NULL, state TEXT NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0, only_sources TEXT,
    created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, next_due_at TEXT, runner TEXT, summary TEXT,
    error TEXT);
CREATE TABLE batch_documents (batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    source TEXT NOT NULL, doc_id TEXT, error TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (batch_id, source));
INSERT INTO batches (id, folder, schedule, state, created_at) VALUES ('lo-1', '/khong/con', 'now', 'done', '2026');
"""
OLD_OUTCOMES = [  # (batch, source, doc_id, error, updated_at) as an older version wrote them
    ("lo-1", "tm.png", "h1", "[cách ly] tài liệu Tuyệt mật: không số hóa (Hướng dẫn 40-HD/VPTW) — chỉ số hóa khi có "
     "phê duyệt của quản trị (top_secret_approval_ref trong batch.toml)", "2026-01-01"),
    ("lo-1", "bad.png", None, "bad.png: tệp rỗng", "2026-01-01"),
    ("lo-1", "ok.png", "x1", None, "2026-01-01"),
]


def test_old_registry_rows_read_into_codes_and_new_rows_are_codes(tmp_path: Path) -> None:
    from flows.batches.status import document_statuses
    from storage.batches import BatchRegistry

    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as conn:  # a registry as an older version left it: sentences in ``error``
        conn.executescript(OLD_REGISTRY)
        conn.executemany("INSERT INTO batch_documents VALUES (?,?,?,?,?)", OLD_OUTCOMES)
    held = reason(ReasonCode.TOP_SECRET_HELD, mark="Tuyệt mật")
    with BatchRegistry(path) as registry:
        old = registry.outcomes("lo-1")
        assert old["tm.png"].held and old["tm.png"].held_reasons == [held] and old["tm.png"].failure is None
        assert old["bad.png"].failure == Reason(code=ReasonCode.LEGACY_TEXT, params={"text": "bad.png: tệp rỗng"})
        assert not old["ok.png"].held and old["ok.png"].failure is None
        record = registry.get("lo-1")
        assert record is not None
        catalog = SqliteCatalog(path)
        try:
            shown = {s.source: s for s in document_statuses(record, registry, catalog)}
        finally:
            catalog.close()
        assert shown["tm.png"].status == "quarantined" and shown["tm.png"].held_reason_codes == [held]
        assert shown["tm.png"].error == describe(held)  # worded as before, without the old mark
        assert shown["bad.png"].status == "failed" and shown["bad.png"].error == "bad.png: tệp rỗng"
        # written again by this version: codes, no sentence
        failure = processing_error("bad.png", OSError("đĩa đầy"))
        registry.record_outcome("lo-1", "bad.png", doc_id=None, now="2026-01-02", failure=failure)
        registry.record_outcome("lo-1", "tm.png", doc_id="h1", now="2026-01-02", held=[held])
        registry.record_outcome("lo-1", "ok.png", doc_id="x1", now="2026-01-02")
        new = registry.outcomes("lo-1")
        assert new["bad.png"].failure == failure and not new["bad.png"].held
        assert new["tm.png"].held and new["tm.png"].held_reasons == [held]
        assert not new["ok.png"].held and new["ok.png"].failure is None
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT source, reasons FROM batch_documents WHERE error IS NULL").fetchall())
    assert json.loads(rows["tm.png"]) == [held.as_json()] and rows["ok.png"] is None


def test_an_old_duplicate_sentence_with_a_line_break_in_its_file_name_is_decoded_and_filtered() -> None:
    text = "có thể trùng với văn bản abc123 (lo\nx.pdf)"
    decoded = from_legacy_text(text)
    assert decoded.code is ReasonCode.DUPLICATE_OF and decoded.document_id == "abc123"
    reader = Principal("u", "staff", 0)
    assert visible_reasons(reader, [decoded], lambda doc_id: 3) == []


def test_an_undecodable_old_duplicate_sentence_is_withheld_from_all_but_the_operator() -> None:
    odd = Reason(code=ReasonCode.LEGACY_TEXT, params={"text": "có thể trùng với văn bản abc123 [định dạng lạ]"})
    assert visible_reasons(Principal("u", "admin", 3), [odd], lambda doc_id: 0) == []
    operator = Principal("op", "admin", 3, operator=True)
    assert visible_reasons(operator, [odd], lambda doc_id: 0) == [odd]


@pytest.mark.parametrize(("mark", "info", "outcome"), [
    ("Mật", BatchInfo(approval_ref="9-QĐ/VPTU"), "quarantine"),  # who approved is part of an approval
    ("Mật", BatchInfo(approval_ref=" ", approved_by=" "), "quarantine"),  # blanks are no approval
    ("Mật", BatchInfo(approval_ref="9-QĐ/VPTU", approved_by="Trần Thị Hoa"), "register"),
    ("Tối mật", BatchInfo(), "quarantine"),  # the default is the strict, lawful one
    ("Tuyệt mật", BatchInfo(top_secret_approval_ref="3-QĐ/TU"), "quarantine"),
    ("Tuyệt mật", BatchInfo(top_secret_approval_ref="3-QĐ/TU", approved_by="Nguyễn Văn An"), "register"),
])
def test_a_copy_approval_names_its_decision_and_who_approved(mark: str, info: BatchInfo, outcome: str) -> None:
    assert decide_intake(DocumentMetadata(classification=mark), info).outcome == outcome


def test_batch_show_reads_a_document_flagged_only_by_a_hidden_duplicate_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.batches import commands
    from flows.batches.status import DocumentStatus
    from schemas.settings import Settings

    levels = {"A": 1, "B": 2}
    monkeypatch.setattr(commands, "_status_level", lambda status, catalog, store: levels[str(status.id)])
    monkeypatch.setattr(commands, "catalog_levels", lambda catalog: levels.get)
    flagged = DocumentStatus(source="a.png", id="A", status="needs_review", pages=1,
                             review_reason_codes=[Reason(code=ReasonCode.DUPLICATE_OF,
                                                         params={"document_id": "B", "source": "b.png"})])
    settings = Settings(archive=tmp_path / "archive")
    (shown,) = commands.visible_statuses(settings, [flagged], None, Principal("u", "archivist", 1))  # type: ignore[arg-type]
    assert shown.status == "done" and shown.review_reason_codes == []
    (own,) = commands.visible_statuses(settings, [flagged], None, Principal("v", "archivist", 2))  # type: ignore[arg-type]
    assert own.status == "needs_review" and own.review_reason_codes == flagged.review_reason_codes


def test_a_batch_summary_shown_without_some_documents_gives_no_run_duration() -> None:
    from flows.batches import commands
    from flows.batches.status import DocumentStatus
    from storage.batches import BatchRecord, BatchSummary

    record = BatchRecord(id="lo-1", folder="/b", schedule="now", state="done", created_at="2026-12-07T00:00:00+00:00",
                         summary=BatchSummary(documents=3, done=3, pages=3, pages_per_minute=26.0, elapsed_s=6.9))
    seen = [DocumentStatus(source="a.png", id="A", status="done", pages=1)]
    hidden = commands._visible_summary(record, seen, hidden=True)
    assert hidden is not None and hidden.elapsed_s == 0 and hidden.pages_per_minute == 0 and hidden.documents == 1
    whole = commands._visible_summary(record, seen, hidden=False)
    assert whole is not None and whole.elapsed_s == 6.9


def test_digitise_still_names_who_ran_it() -> None:
    from interfaces.cli import build_parser

    args = build_parser().parse_args(["digitise", "lo", "--as", "thu-kho"])
    assert args.as_user == "thu-kho"
