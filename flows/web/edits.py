"""Archivists' corrections: versioned edits kept apart from the machine extraction.

A stored manifest (``document.json``) is never rewritten: every correction is a row of the ``edits`` table
(document, field, value before, value after, who, when). The document a reader sees, and the search index holds,
is the manifest with its edits applied in order (``corrected``).

Fields: ``metadata.<key>`` (``EDITABLE_METADATA``), ``page.<n>`` (a page's text), ``status`` (``done`` once an
archivist has reviewed the document).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flows.web.db import WebDb
from schemas.document import DocumentManifest
from schemas.metadata import CLASSIFICATIONS, URGENCIES, DocumentMetadata
from schemas.text import nfc

# TT 05/2025 names of the fields an archivist may correct, in form order.
EDITABLE_METADATA: dict[str, str] = {
    "code_number": "Số văn bản",
    "code_notation": "Ký hiệu văn bản",
    "type_name": "Tên loại văn bản",
    "issued_date": "Ngày, tháng, năm văn bản",
    "place": "Địa danh",
    "organ_name": "Tên cơ quan, tổ chức ban hành",
    "subject": "Trích yếu nội dung",
    "authority": "Thẩm quyền ký",
    "signer_title": "Chức vụ người ký",
    "signer": "Người ký",
    "classification": "Độ mật",
    "urgency": "Mức độ khẩn",
    "recipients": "Nơi nhận",
}
CHOICES: dict[str, tuple[str, ...]] = {"classification": CLASSIFICATIONS, "urgency": URGENCIES}


class EditError(ValueError):
    """A correction that cannot be accepted (Vietnamese message for the form)."""


@dataclass(frozen=True)
class Edit:
    id: int
    doc_id: str
    field: str
    before: object
    after: object
    username: str
    at: str

    @property
    def label(self) -> str:
        return field_label(self.field)


def field_label(field: str) -> str:
    kind, _, name = field.partition(".")
    if kind == "metadata":
        return EDITABLE_METADATA.get(name, name)
    if kind == "page":
        return f"Nội dung trang {name}"
    return "Trạng thái" if field == "status" else field


def normalise_value(field: str, value: object) -> object:
    """The stored form of a submitted value (``EditError`` when it is not acceptable)."""
    if field == "status":
        if value not in ("done", "needs_review"):
            raise EditError("Trạng thái không hợp lệ")
        return value
    if field.startswith("page."):
        text = nfc(str(value or "")).replace("\r\n", "\n").replace("\r", "\n")
        return text.rstrip()
    name = field.removeprefix("metadata.")
    if name not in EDITABLE_METADATA:
        raise EditError(f"Không sửa được trường {name}")
    if name == "recipients":
        lines = value if isinstance(value, list) else str(value or "").splitlines()
        return [" ".join(nfc(str(v)).split()) for v in lines if str(v).strip()]
    text = " ".join(nfc(str(value or "")).split())
    if not text:
        return None
    if name == "issued_date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise EditError(f"{EDITABLE_METADATA[name]}: cần dạng NNNN-TT-NN, ví dụ 2023-03-14") from exc
    if name in CHOICES and text not in CHOICES[name]:
        raise EditError(f"{EDITABLE_METADATA[name]}: chọn một trong {', '.join(CHOICES[name])} hoặc để trống")
    if len(text) > 2000:
        raise EditError(f"{EDITABLE_METADATA[name]}: quá dài")
    return text


def current_value(manifest: DocumentManifest, field: str) -> object:
    if field == "status":
        return manifest.status
    if field.startswith("page."):
        number = int(field.removeprefix("page."))
        return next((p.text.rstrip() for p in manifest.pages if p.number == number), "")
    value = getattr(manifest.metadata, field.removeprefix("metadata."))
    return list(value) if isinstance(value, list) else value


def corrected(manifest: DocumentManifest, edits: list[Edit]) -> DocumentManifest:
    """The manifest with its edits applied in order (a new object; the stored manifest is untouched)."""
    if not edits:
        return manifest
    metadata = manifest.metadata.model_dump()
    pages = {p.number: p for p in manifest.pages}
    status = manifest.status
    for edit in edits:
        if edit.field == "status" and edit.after in ("done", "needs_review"):
            status = "done" if edit.after == "done" else "needs_review"
        elif edit.field.startswith("page."):
            number = int(edit.field.removeprefix("page."))
            if number in pages:
                pages[number] = pages[number].model_copy(update={"text": str(edit.after)})
        elif edit.field.startswith("metadata."):
            metadata[edit.field.removeprefix("metadata.")] = edit.after
    return manifest.model_copy(update={
        "metadata": DocumentMetadata.model_validate(metadata),
        "pages": [pages[p.number] for p in manifest.pages],
        "status": status,
    })


def _edit(row: tuple[object, ...]) -> Edit:
    return Edit(id=int(str(row[0])), doc_id=str(row[1]), field=str(row[2]), before=json.loads(str(row[3])),
                after=json.loads(str(row[4])), username=str(row[5]), at=str(row[6]))


def edits_of(db: WebDb, doc_id: str) -> list[Edit]:
    with db.connect() as conn:
        rows = conn.execute("SELECT id, doc_id, field, before, after, username, at FROM edits WHERE doc_id = ? "
                            "ORDER BY id", (doc_id,)).fetchall()
    return [_edit(r) for r in rows]


def edited_documents(db: WebDb) -> list[str]:
    with db.connect() as conn:
        return [str(r[0]) for r in conn.execute("SELECT DISTINCT doc_id FROM edits ORDER BY doc_id")]


def record(conn: sqlite3.Connection, doc_id: str, username: str, changes: list[tuple[str, object, object]]) -> None:
    """Insert edits (field, before, after) in an open transaction."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    conn.executemany(
        "INSERT INTO edits(doc_id, field, before, after, username, at) VALUES (?,?,?,?,?,?)",
        [(doc_id, field, json.dumps(before, ensure_ascii=False), json.dumps(after, ensure_ascii=False), username, at)
         for field, before, after in changes],
    )
