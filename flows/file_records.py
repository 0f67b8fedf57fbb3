"""Archivists' changes to the filing: create or edit a hồ sơ record (TT 05 fields), file a document in a hồ sơ or
take it out. The rules are ``flows.files``'s; a document's move is a correction (``flows.review.apply_changes``:
fields ``file_code`` and ``sequence``, versioned in the object store, audited, re-indexed at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from flows.access import TOP_LEVEL
from flows.corrections import EditError, normalise_value, writing
from flows.files import NO_FONDS, FileView, file_view
from flows.review import Reviewer, apply_changes, load_document, not_found
from flows.wiring import open_file_records
from schemas.settings import Settings
from schemas.text import nfc
from storage.files import FileRecord

CHOSEN_SEQUENCE_REFUSED = ("Số thứ tự: chỉ người được xem mọi mức mật mới chọn được số thứ tự; để trống ô này, "
                           "văn bản sẽ được xếp cuối hồ sơ")
MAINTENANCE = ("01 - Vĩnh viễn", "02 - 70 năm", "03 - 50 năm", "04 - 30 năm", "05 - 20 năm", "06 - 10 năm",
               "07 - Khác")  # TT 05/2025 thời hạn bảo quản
RECORD_FIELDS = {"title": "Tiêu đề hồ sơ", "fonds": "Phông lưu trữ", "start_date": "Thời gian bắt đầu",
                 "end_date": "Thời gian kết thúc", "maintenance": "Thời hạn bảo quản", "language": "Ngôn ngữ",
                 "note": "Ghi chú"}


def _clean(name: str, value: object) -> str | None:
    text = " ".join(nfc(str(value or "")).split()) if name != "note" else nfc(str(value or "")).strip()
    if not text:
        return None
    if len(text) > (4000 if name == "note" else 1000):
        raise EditError(f"{RECORD_FIELDS[name]}: quá dài")
    if name in ("start_date", "end_date"):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise EditError(f"{RECORD_FIELDS[name]}: cần dạng NNNN-TT-NN, ví dụ 2001-03-14") from exc
    if name == "maintenance" and text not in MAINTENANCE:
        raise EditError(f"Thời hạn bảo quản: chọn một trong {', '.join(MAINTENANCE)}")
    if name == "fonds" and text == NO_FONDS:
        raise EditError("Phông lưu trữ: tên không hợp lệ")
    return text


def record_fields(submitted: Mapping[str, object]) -> dict[str, str | None]:
    """The record's fields from a form (``EditError`` with a Vietnamese message when one is not acceptable)."""
    fields = {name: _clean(name, submitted.get(name)) for name in RECORD_FIELDS}
    if not fields["title"]:
        raise EditError("Cần nhập tiêu đề hồ sơ")
    if fields["start_date"] and fields["end_date"] and fields["start_date"] > fields["end_date"]:
        raise EditError("Thời gian bắt đầu phải trước thời gian kết thúc")
    return fields


def file_code_of(value: object) -> str:
    code = normalise_value("file_code", value)
    if not isinstance(code, str):
        raise EditError("Cần nhập mã hồ sơ")
    return code


def save_record(settings: Settings, reviewer_name: str, file_code: str, submitted: Mapping[str, object], *,
                create: bool) -> FileRecord:
    """Create (``create``: refused when the code has a record already) or replace a hồ sơ record. An edit of a
    hồ sơ the caller cannot see is refused by the caller first (``file_view``)."""
    code = file_code_of(file_code)
    fields = record_fields(submitted)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    records = open_file_records(settings)
    try:
        existing = records.get(code)
        if create and existing is not None:
            raise EditError(f"Hồ sơ {code} đã có: mở hồ sơ đó để sửa")
        record = FileRecord(file_code=code, **fields,  # type: ignore[arg-type]
                            created_by=existing.created_by if existing else reviewer_name,
                            created_at=existing.created_at if existing else now,
                            updated_by=reviewer_name, updated_at=now)
        records.save(record)
    finally:
        records.close()
    return record


def file_document(reviewer: Reviewer, doc_id: str, file_code: str, sequence: int | None = None) -> FileView:
    """File a document in hồ sơ ``file_code`` (which must exist for the reviewer) with số thứ tự ``sequence``
    (default: after the last document the reviewer sees there). The document is loaded through the policy first:
    one above the reviewer's clearance is ``NotFoundError``, exactly like a missing id. Only a reviewer cleared for
    every level may choose the number: a chosen number is stored as typed and sorts against the stored numbers of
    documents a less cleared reviewer cannot see, so where it lands would map them; others file at the end."""
    principal = reviewer.user.principal
    with writing(reviewer.settings):  # one lock: two filings at once never take the same next number
        load_document(reviewer.settings, reviewer.store, doc_id, principal)  # hidden == missing, before anything
        view = file_view(reviewer.settings, principal, file_code_of(file_code))
        if sequence is not None and not principal.operator and principal.clearance < TOP_LEVEL:
            raise EditError(CHOSEN_SEQUENCE_REFUSED)  # typed numbers sort against hidden ones: an oracle
        if sequence is None:
            others = [d.entry.sequence or 0 for d in view.documents if d.entry.id != doc_id]
            sequence = max(others, default=0) + 1
        apply_changes(reviewer, doc_id, {"file_code": view.file_code, "sequence": sequence})
    return view


def unfile_document(reviewer: Reviewer, doc_id: str, file_code: str) -> None:
    """Take a document out of hồ sơ ``file_code`` (``NotFoundError`` when it is not there, hidden or missing)."""
    view = load_document(reviewer.settings, reviewer.store, doc_id, reviewer.user.principal)
    if view.manifest.file_code != file_code:
        raise not_found()
    apply_changes(reviewer, doc_id, {"file_code": None, "sequence": None})
