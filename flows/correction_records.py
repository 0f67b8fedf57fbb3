"""Correction records and values: the fields an archivist may correct, a correction's versioned, sealed
record (``Correction``), the errors, and applying corrections to a manifest (``corrected``). The whole design:
``flows.corrections``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from schemas.document import DocumentManifest
from schemas.errors import ExitCode, SohoaError
from schemas.metadata import CLASSIFICATIONS, URGENCIES, DocumentMetadata
from schemas.text import nfc
from storage.layout import correction_of

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
# the document's place in a hồ sơ (filing: ``flows.files``), corrected like the other fields
FILING_FIELDS: dict[str, str] = {"file_code": "Mã hồ sơ", "sequence": "Số thứ tự trong hồ sơ"}
CHOICES: dict[str, tuple[str, ...]] = {"classification": CLASSIFICATIONS, "urgency": URGENCIES}
CORRECTION_ACTION = "correction.record"  # the audit entry of every correction written


class EditError(ValueError):
    """A correction that cannot be accepted (Vietnamese message for the form)."""


class VersionConflict(EditError):
    """Someone corrected the document since the version the correction was made from."""

    def __init__(self) -> None:
        super().__init__("Văn bản vừa được người khác chỉnh sửa: tải lại trang để xem bản mới rồi sửa lại")


class CorrectionsUnreadable(SohoaError):
    """A document's corrections are damaged or incomplete in the store: the document cannot be shown safely."""

    exit_code = ExitCode.PRESERVATION_PROBLEMS


class ReindexPending(SohoaError):
    """A correction was recorded but the catalog and index could not be updated: the document is out of them."""

    exit_code = ExitCode.PRESERVATION_PROBLEMS


@dataclass(frozen=True)
class Edit:
    """One field's correction, as readers list it. ``id`` is the version of the correction it belongs to."""

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


@dataclass(frozen=True)
class Change:
    field: str
    before: object
    after: object


@dataclass(frozen=True)
class Correction:
    """One saved correction of a document: one write-once object in the store."""

    doc_id: str
    version: int  # 1, 2, ... in the order they were saved
    username: str
    at: str  # UTC, ISO 8601
    changes: tuple[Change, ...]
    migrated_from: tuple[int, ...] = ()  # ids of the web.sqlite3 ``edits`` rows it was copied from

    def edits(self) -> list[Edit]:
        return [Edit(self.version, self.doc_id, c.field, c.before, c.after, self.username, self.at)
                for c in self.changes]

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "doc_id": self.doc_id, "version": self.version, "username": self.username, "at": self.at,
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in self.changes],
        }
        if self.migrated_from:
            body["migrated_from"] = {"web.sqlite3/edits": list(self.migrated_from)}
        return body

    def to_bytes(self) -> bytes:
        body = self.body()
        return (json.dumps(body | {"seal": _seal(body)}, ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, key: str) -> Correction:
        """Parse a stored correction; ``CorrectionsUnreadable`` when it is damaged or not where it belongs."""
        where = correction_of(key)
        try:
            raw = json.loads(data.decode("utf-8"))
            seal = raw.pop("seal")
            if seal != _seal(raw):
                raise ValueError("seal")
            changes = tuple(Change(str(c["field"]), c["before"], c["after"]) for c in raw["changes"])
            legacy = raw.get("migrated_from", {}).get("web.sqlite3/edits", [])
            correction = cls(doc_id=str(raw["doc_id"]), version=int(raw["version"]), username=str(raw["username"]),
                             at=str(raw["at"]), changes=changes, migrated_from=tuple(int(i) for i in legacy))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise unreadable(where[0] if where else key, f"{key} hỏng hoặc không đọc được") from exc
        if where != (correction.doc_id, correction.version):
            raise unreadable(correction.doc_id, f"{key} không thuộc vị trí của nó trong kho")
        return correction


def _seal(body: dict[str, object]) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def unreadable(doc_id: str, detail: str) -> CorrectionsUnreadable:
    return CorrectionsUnreadable(f"Không đọc được các chỉnh sửa của văn bản {doc_id}: {detail}",
                                 fix="chạy sohoa verify; khôi phục thư mục audit/corrections/ từ bản sao lưu "
                                     "(sohoa backup --archive BẢN_SAO --to KHO)")


def field_label(field: str) -> str:
    kind, _, name = field.partition(".")
    if kind == "metadata":
        return EDITABLE_METADATA.get(name, name)
    if kind == "page":
        return f"Nội dung trang {name}"
    if field in FILING_FIELDS:
        return FILING_FIELDS[field]
    return "Trạng thái" if field == "status" else field


def _filing_value(field: str, value: object) -> object:
    if value is None or value == "":
        return None
    if field == "sequence":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise EditError("Số thứ tự trong hồ sơ: cần một số nguyên dương")
        return value
    text = nfc(str(value)).strip()
    if len(text) > 100 or any(c in '/\\:*?"<>|' or ord(c) < 32 for c in text):
        raise EditError("Mã hồ sơ không hợp lệ: chỉ gồm chữ, số, dấu chấm và gạch ngang (vd. H49.64.33.2001.160)")
    return text


def normalise_value(field: str, value: object) -> object:
    """The stored form of a submitted value (``EditError`` when it is not acceptable)."""
    if field in FILING_FIELDS:
        return _filing_value(field, value)
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
    if field in FILING_FIELDS:
        return getattr(manifest, field)
    if field == "status":
        return manifest.status
    if field.startswith("page."):
        number = int(field.removeprefix("page."))
        return next((p.text.rstrip() for p in manifest.pages if p.number == number), "")
    value = getattr(manifest.metadata, field.removeprefix("metadata."))
    return list(value) if isinstance(value, list) else value


def corrected(manifest: DocumentManifest, edits: Sequence[Edit]) -> DocumentManifest:
    """The manifest with its edits applied in order (a new object; the stored manifest is untouched)."""
    if not edits:
        return manifest
    metadata = manifest.metadata.model_dump()
    pages = {p.number: p for p in manifest.pages}
    status = manifest.status
    filing: dict[str, object] = {}
    for edit in edits:
        if edit.field in FILING_FIELDS:
            filing[edit.field] = edit.after
        elif edit.field == "status" and edit.after in ("done", "needs_review"):
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
        **filing,
    })
