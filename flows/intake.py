"""Intake records in the object store: the copy/photo register and the quarantine (``storage.layout``).

Both are durable archive records (not caches): each entry is a small JSON object written once, copied by
``sohoa backup``, listed by ``sohoa register``. A quarantine record holds only what a register needs to find the
paper document again (number, date, organ, type, mark), never its text, and why it was held: ``reasons``, codes
(``schemas.reasons``; records written before codes hold one Vietnamese ``reason`` string, read by ``held_reasons``).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

from flows.access import TOP_LEVEL, Levels, Principal, record_level, visible_items
from flows.cells import neutralise_formula
from pipeline.load import check_file_code, read_batch_info
from schemas.document import BatchInfo, DocumentSource
from schemas.errors import ConfigError
from schemas.metadata import DocumentMetadata
from schemas.reasons import Reason, codes_json, from_legacy_joined, stored_reasons
from schemas.settings import Settings
from storage.layout import COPY_REGISTER, QUARANTINE
from storage.objects import ObjectMissing, ObjectStore

REGISTER_COLUMNS = (
    ("at", "Thời điểm chụp (UTC)"), ("doc_id", "Mã văn bản"), ("source", "Tệp quét"), ("batch", "Lô"),
    ("code", "Số, ký hiệu"), ("issued_date", "Ngày ban hành"), ("organ", "Cơ quan ban hành"),
    ("type_name", "Tên loại"), ("classification", "Độ mật"), ("pages", "Số trang"),
    ("approval_ref", "Số quyết định phê duyệt"), ("approved_by", "Người duyệt"), ("operator", "Người thực hiện"),
    ("state", "Tình trạng"),
)


def batch_dir_of(doc: DocumentSource) -> Path:
    """The batch folder a document came from (a file or a folder directly inside it)."""
    first = doc.files[0]
    return first.parent if doc.kind == "file" else first.parent.parent


def check_batch(batch_dir: Path | str, file_code: str | None, settings: Settings | None = None, *,
                where: str = "--file-code") -> None:
    """A mã hồ sơ given on the command line, the batch's ``batch.toml`` (a folder's, or an S3 inbox prefix's with
    ``settings``: a missing bucket or empty prefix too): any broken stops a run before any work."""
    check_file_code(file_code, where=where)
    if isinstance(batch_dir, Path) or settings is None:
        read_batch_info(Path(batch_dir))
        return
    from flows.inbox import batch_info

    batch_info(batch_dir, settings)


def approvals_of(doc: DocumentSource) -> BatchInfo:
    try:
        return read_batch_info(batch_dir_of(doc))
    except (ConfigError, IndexError):
        return BatchInfo()


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _identity(metadata: DocumentMetadata) -> dict[str, object]:
    code = "-".join(str(v) for v in (metadata.code_number, metadata.code_notation) if v)
    return {"code": code or None, "issued_date": metadata.issued_date, "organ": metadata.organ_name,
            "type_name": metadata.type_name, "classification": metadata.classification}


def record_copy(store: ObjectStore, *, doc_id: str, source: str, batch: str, metadata: DocumentMetadata,
                pages: int, approvals: BatchInfo, approved: bool) -> None:
    """One register entry per classified document digitised (written once: a re-run keeps the first)."""
    key = f"{COPY_REGISTER}{doc_id}.json"
    if store.exists(key):
        return
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "doc_id": doc_id, "source": source,
             "batch": batch, **_identity(metadata), "pages": pages,
             "approval_ref": (approvals.top_secret_approval_ref if metadata.classification not in ("Mật", "Tối mật")
                              else approvals.approval_ref) if approved else None,
             "approved_by": approvals.approved_by if approved else None, "operator": _operator(),
             "state": "đã phê duyệt" if approved else "chưa có phê duyệt"}
    store.put_bytes(key, json.dumps(entry, ensure_ascii=False, indent=1).encode("utf-8"))


def quarantine(store: ObjectStore, *, doc_id: str, source: str, batch: str, metadata: DocumentMetadata,
               reasons: list[Reason], released: bool = False) -> None:
    """Record a document stopped at intake; ``released``: it has been approved and digitised since."""
    key = f"{QUARANTINE}{doc_id}.json"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    first = quarantined(store, doc_id) if released else None
    record = {"at": (first or {}).get("at", now), "doc_id": doc_id, "source": source, "batch": batch,
              **_identity(metadata), "reasons": codes_json(reasons), "operator": _operator()}
    if released:
        record["released_at"] = now
    store.put_bytes(key, json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8"))


def quarantined(store: ObjectStore, doc_id: str) -> dict[str, object] | None:
    try:
        return dict(json.loads(store.get_bytes(f"{QUARANTINE}{doc_id}.json")))
    except ObjectMissing:
        return None


def held_reasons(record: dict[str, object]) -> list[Reason]:
    """Why a quarantine record's document was held: its codes, or the sentence an older version wrote."""
    if "reasons" in record:
        return stored_reasons(record["reasons"])
    return from_legacy_joined(str(record.get("reason") or ""))


def _records(store: ObjectStore, prefix: str) -> list[dict[str, object]]:
    out = [dict(json.loads(store.get_bytes(key))) for key in store.list(prefix) if key.endswith(".json")]
    return sorted(out, key=lambda r: (str(r.get("at")), str(r.get("doc_id"))))


def register_entries(store: ObjectStore) -> list[dict[str, object]]:
    """The copy/photo register in the order the documents were photographed, numbered from 1."""
    return [{"stt": i, **r} for i, r in enumerate(_records(store, COPY_REGISTER), 1)]


HELD_STATE = "chờ phê duyệt"  # held at intake, waiting for the approval that lets a re-run digitise it
RELEASED_STATE = "đã phê duyệt"  # approved and digitised since


def quarantine_entries(store: ObjectStore) -> list[dict[str, object]]:
    """The documents held at intake, each with its ``state``: waiting for approval, or approved and digitised."""
    return [{**r, "state": RELEASED_STATE if r.get("released_at") else HELD_STATE} for r in _records(store, QUARANTINE)]


def visible_records(principal: Principal, entries: list[dict[str, object]],
                    levels: Levels | None = None) -> list[dict[str, object]]:
    """Register or quarantine entries ``principal`` may see (``flows.access``). Only archivists (and the local
    operator) read the registers. An entry's level is the higher of the mark it was registered with and the
    document's current one (``levels``: from the catalog, which holds the archivists' corrections: a document
    raised since is hidden at its new level). A restricted reader's register is numbered anew, so no gap in the
    numbers tells that entries above their clearance exist."""
    if not principal.has_role("archivist"):
        return []
    if principal.operator or principal.clearance >= TOP_LEVEL:
        return entries

    def level(entry: dict[str, object]) -> int:
        current = levels(str(entry.get("doc_id"))) if levels is not None else None
        return max(record_level(entry), current or 0)

    shown = visible_items(principal, entries, level)
    return [{**e, "stt": i} if "stt" in e else e for i, e in enumerate(shown, 1)]


def register_table(entries: list[dict[str, object]]) -> tuple[list[str], list[list[object]]]:
    headers = ["STT", *[label for _, label in REGISTER_COLUMNS]]
    rows = [[e["stt"], *[e.get(key) for key, _ in REGISTER_COLUMNS]] for e in entries]
    return headers, rows


def write_register(entries: list[dict[str, object]], out: Path) -> None:
    """The register as CSV (UTF-8 with BOM) or XLSX, Vietnamese headers."""
    headers, rows = register_table(entries)
    rows = [[neutralise_formula(v) if isinstance(v, str) else v for v in row] for row in rows]
    if out.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "So quan ly sao chup"
        sheet.append(headers)
        for row in rows:
            sheet.append(["" if v is None else v for v in row])
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # openpyxl takes a string starting with "=" for a formula: text it is
        book.save(out)
        return
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    out.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")
