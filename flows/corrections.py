"""Archivists' corrections: one truth, kept in the object store beside the machine reading.

A stored manifest (``document.json``) is the machine reading and stays as it was written (provenance). Every
correction an archivist saves is a versioned, write-once record in the object store
(``audit/corrections/<id>/<nnnnnn>.json``, ``storage.layout``): who, when, and each field's value before →
after. The document every reader gets — ``sohoa show``, search (the catalog and index rows), every export, the
archival packages, the web — is the manifest with its corrections applied in version order (``corrected``).
Because they are objects of the store, ``sohoa backup`` copies them, ``sohoa verify`` accepts them (the
``audit/`` area) and ``sohoa reindex`` re-applies them while it rebuilds the catalog and index
(``rebuild_index``).

Writers: one at a time per archive (``writing``: an exclusive lock file in ``ARCHIVE/work/``), and a version is
written only if it does not exist yet (compare-and-set on the version: the store also refuses to change a written
one, ``storage.layout.is_immutable``). Several web processes on other machines sharing one S3 bucket are NOT
serialised by the lock file (they would need a conditional put); the write-once check then narrows, but does
not close, the race.

A correction record carries its own SHA-256 (``seal``) over its content: a damaged or missing version makes the
whole history unreadable (``CorrectionsUnreadable``) rather than silently dropped — a lost "raised to Mật" must
never show a document to a reader without clearance. The seal is not keyed, and deleting the NEWEST version
leaves no gap, so every version written is also recorded in the archive's keyed audit trail
(``correction.record``: document, version, SHA-256 of the stored record, ``correction_details``): a version the
trail knows that the store no longer holds as written is a problem for ``sohoa verify`` (``audit_problems``) and
makes the history unreadable for ``reindex``, ``show`` and the web (``AuditedCorrections``; for a store that is
not the archive's embedded one, where the caller passes the archive). The other way round too: where the archive
has a trail, a version in the store that the trail never recorded with the same SHA-256 (a valid-looking record
copied straight into the store) is not applied — the history is unreadable and ``sohoa verify`` reports it
(``unexpected``). So the entry is written before any reader could see the version: the web writes the record,
appends the entry, and indexes the document from the correction it holds (never re-reading the history between);
the legacy migration records the entry before it writes the record.

A correction is re-indexed at once (``reindex_or_hide``: a few attempts); when that keeps failing the document is
taken out of the catalog and the search index (fail closed: never left findable at its old level) and marked
``work/reindex-pending/<id>.json``; the next start (``reapply``), ``sohoa reindex`` or correction indexes it again.

Earlier archives kept corrections in ``ARCHIVE/web.sqlite3`` (table ``edits``): ``migrate_legacy`` copies them
into the store once (idempotent, resumable; the table is left as it was) on first use.

Fields: ``metadata.<key>`` (``EDITABLE_METADATA``), ``page.<n>`` (a page's text), ``status`` (``done`` once an
archivist has reviewed the document).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from flows.audit import ANCHOR_FILE, AUDIT_FILE, STORE_ANCHOR, archive_of_store
from flows.preservation import stored_manifests
from flows.wiring import CATALOG_FILE, build_object_store, build_search_index
from schemas.document import DocumentManifest
from schemas.errors import SohoaError
from schemas.fixity import FixityProblem, ReindexReport
from schemas.metadata import CLASSIFICATIONS, URGENCIES, DocumentMetadata
from schemas.settings import Settings
from schemas.text import nfc
from storage import search_sqlite
from storage.accounts_db import WebDb, web_db_path
from storage.audit import Anchor, AuditLog, AuditLogMissing
from storage.catalog import SqliteCatalog
from storage.layout import CORRECTIONS, correction_key, correction_of, corrections_prefix
from storage.objects import ImmutableObjectError, ObjectMissing, ObjectStore
from storage.search_index import SearchIndex, entry_of

log = logging.getLogger("sohoa.corrections")

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
LOCK_FILE = "work/corrections.lock"
PENDING_DIR = "work/reindex-pending"  # documents taken out of the index until they are re-indexed
CORRECTION_ACTION = "correction.record"  # the audit entry of every correction written
REINDEX_RETRY_DELAYS_S: tuple[float, ...] = (0.5, 2.0)  # waits between the attempts to re-index a correction


class EditError(ValueError):
    """A correction that cannot be accepted (Vietnamese message for the form)."""


class VersionConflict(EditError):
    """Someone corrected the document since the version the correction was made from."""

    def __init__(self) -> None:
        super().__init__("Văn bản vừa được người khác chỉnh sửa: tải lại trang để xem bản mới rồi sửa lại")


class CorrectionsUnreadable(SohoaError):
    """A document's corrections are damaged or incomplete in the store: the document cannot be shown safely."""

    exit_code = 7


class ReindexPending(SohoaError):
    """A correction was recorded but the catalog and index could not be updated: the document is out of them."""

    exit_code = 7


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
            raise _unreadable(where[0] if where else key, f"{key} hỏng hoặc không đọc được") from exc
        if where != (correction.doc_id, correction.version):
            raise _unreadable(correction.doc_id, f"{key} không thuộc vị trí của nó trong kho")
        return correction


def _seal(body: dict[str, object]) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _unreadable(doc_id: str, detail: str) -> CorrectionsUnreadable:
    return CorrectionsUnreadable(f"Không đọc được các chỉnh sửa của văn bản {doc_id}: {detail}",
                                 fix="chạy sohoa verify; khôi phục thư mục audit/corrections/ từ bản sao lưu "
                                     "(sohoa backup --archive BẢN_SAO --to KHO)")


# --- the port ----------------------------------------------------------------------------------------------


class CorrectionStore(Protocol):
    """Where corrections live (``ObjectStoreCorrections``: the archive's object store)."""

    def history(self, doc_id: str) -> list[Correction]:
        """The document's corrections in version order; ``CorrectionsUnreadable`` when one is damaged or missing."""

    def documents(self) -> set[str]:
        """Ids of the documents that have corrections."""

    def add(self, correction: Correction) -> None:
        """Write a new version; ``VersionConflict`` when that version exists already."""


class AuditedCorrections:
    """The correction versions the archive's audit trail says were written: {version: SHA-256 of the stored
    record} per document (``correction.record`` entries). Read without the key: ``sohoa audit verify`` vouches for
    the trail itself. An archive without a trail knows none (``available``: False, nothing is checked; a trail
    whose database is gone but whose anchor file remains is available, and knows none: fail closed)."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self._all: dict[str, dict[int, str]] | None = None

    @property
    def available(self) -> bool:
        """Whether the archive has an audit trail: then every correction in the store must be recorded in it."""
        if (self.archive / AUDIT_FILE).exists():
            return True
        try:
            return (self.archive / ANCHOR_FILE).stat().st_size > 0
        except OSError:
            return False

    def vouches_for(self, store: ObjectStore) -> bool:
        """Whether every correction in ``store`` must be recorded in this trail: the archive has a trail, and
        ``store`` is the archive's own (embedded: ``ARCHIVE/objects``) or anchored on this trail's chain (its
        ``audit/anchor.json``: the archive's backup). A store another chain anchored (an archive being rebuilt
        from a backup alone, its new trail knowing none of the corrections) is checked only against the versions
        this trail recorded, as before."""
        if not self.available:
            return False
        own = archive_of_store(store)
        if own is not None and own.resolve() == self.archive.resolve():
            return True
        try:
            anchor: Anchor | None = Anchor.parse(store.get_bytes(STORE_ANCHOR))
        except ObjectMissing:
            anchor = None
        except ValueError:
            return True  # an unreadable anchor: fail closed
        if anchor is None:
            return True  # nothing says the store belongs to another chain: fail closed
        try:
            trail = AuditLog(self.archive / AUDIT_FILE, None, create=False, anchor=self.archive / ANCHOR_FILE)
        except (AuditLogMissing, sqlite3.Error):
            return True
        try:
            return trail.hash_at(anchor.seq) == anchor.last
        except sqlite3.Error:
            return True
        finally:
            trail.close()

    def _read(self, target: str | None) -> dict[str, dict[int, str]]:
        try:
            trail = AuditLog(self.archive / AUDIT_FILE, None, create=False, anchor=self.archive / ANCHOR_FILE)
        except (AuditLogMissing, sqlite3.Error):
            return {}
        out: dict[str, dict[int, str]] = {}
        try:
            for entry in trail.entries(action=CORRECTION_ACTION, target=target):
                version, digest = entry.details.get("version"), entry.details.get("sha256")
                if isinstance(version, int) and version >= 1:
                    out.setdefault(entry.target, {})[version] = digest if isinstance(digest, str) else ""
        except sqlite3.Error:  # an unreadable trail is reported by sohoa audit verify
            return out
        finally:
            trail.close()
        return out

    def of(self, doc_id: str) -> dict[int, str]:
        return (self._all if self._all is not None else self._read(doc_id)).get(doc_id, {})

    def all(self) -> dict[str, dict[int, str]]:
        if self._all is None:
            self._all = self._read(None)
        return self._all


class ObjectStoreCorrections:
    """Corrections in the object store; with ``audited``, a version the audit trail recorded that the store no
    longer holds as written makes the history unreadable, and so does a version in the store that the trail (when
    the archive has one) never recorded with the same SHA-256: a record copied straight into the store carries a
    valid seal (unkeyed), only the keyed trail tells it from one an archivist saved."""

    def __init__(self, store: ObjectStore, audited: AuditedCorrections | None = None) -> None:
        self.store = store
        self.audited = audited
        self._vouches: bool | None = None

    def history(self, doc_id: str) -> list[Correction]:
        versions = []
        for key in self.store.list(corrections_prefix(doc_id)):
            where = correction_of(key)
            if where is not None and where[0] == doc_id:
                versions.append((where[1], key))
        known = self.audited.of(doc_id) if self.audited is not None else {}
        vouched = self.audited is not None and self._vouched()  # every stored version must be recorded
        present = {version for version, _ in versions}
        for version in sorted(set(known) - present):
            raise _unreadable(doc_id, f"nhật ký kiểm soát ghi bản chỉnh sửa số {version} nhưng kho không còn "
                                      f"{correction_key(doc_id, version)}: bản ghi bị xóa")
        out = []
        for expected, (version, key) in enumerate(sorted(versions), 1):
            if version != expected:
                raise _unreadable(doc_id, f"thiếu bản chỉnh sửa số {expected} trong kho")
            try:
                data = self.store.get_bytes(key)
            except ObjectMissing as exc:
                raise _unreadable(doc_id, f"thiếu {key} trong kho") from exc
            if vouched and version not in known:
                raise _unreadable(doc_id, f"{key} không được ghi trong nhật ký kiểm soát: bản ghi không do hệ "
                                          "thống lưu (chép thẳng vào kho?)")
            if version in known and hashlib.sha256(data).hexdigest() != known[version]:
                raise _unreadable(doc_id, f"{key} khác bản đã ghi trong nhật ký kiểm soát: bản ghi bị thay")
            out.append(Correction.from_bytes(data, key=key))
        return out

    def _vouched(self) -> bool:
        if self.audited is None:
            return False
        if self._vouches is None:
            self._vouches = self.audited.vouches_for(self.store)
        return self._vouches

    def documents(self) -> set[str]:
        stored = {w[0] for k in self.store.list(CORRECTIONS) if (w := correction_of(k)) is not None}
        return (stored | set(self.audited.all())) if self.audited is not None else stored

    def add(self, correction: Correction) -> None:
        key = correction_key(correction.doc_id, correction.version)
        if self.store.exists(key):
            raise VersionConflict()
        try:
            self.store.put_bytes(key, correction.to_bytes())
        except ImmutableObjectError as exc:  # written meanwhile by another writer
            raise VersionConflict() from exc


def corrections_of(store: ObjectStore, archive: Path | None = None) -> CorrectionStore:
    """The corrections in ``store``, checked against the audit trail of ``archive`` (default: the archive of an
    embedded store, ``ARCHIVE/objects``; another store is checked only when its archive is given)."""
    where = archive or archive_of_store(store)
    return ObjectStoreCorrections(store, AuditedCorrections(where) if where is not None else None)


def correction_details(correction: Correction) -> dict[str, object]:
    """The details of the ``correction.record`` audit entry of a written correction."""
    return {"version": correction.version, "fields": [c.field for c in correction.changes],
            "sha256": hashlib.sha256(correction.to_bytes()).hexdigest(),
            "key": correction_key(correction.doc_id, correction.version)}


def audit_problems(store: ObjectStore, archive: Path) -> list[FixityProblem]:
    """The corrections ``archive``'s audit trail recorded that ``store`` no longer holds as written (missing, or
    another record in their place), and the corrections in ``store`` that the trail (when the archive has one)
    never recorded (unexpected: written straight into the store): each one may undo a raised classification
    (``sohoa verify``)."""
    problems = []
    audited = AuditedCorrections(archive)
    if audited.vouches_for(store):
        recorded = audited.all()
        for key in store.list(CORRECTIONS):
            where = correction_of(key)
            if where is not None and where[1] not in recorded.get(where[0], {}):
                problems.append(FixityProblem(
                    kind="unexpected", key=key, document=where[0],
                    detail="bản chỉnh sửa không được ghi trong nhật ký kiểm soát (chép thẳng vào kho?): không được "
                           "áp dụng; văn bản không được hiển thị và bị loại khỏi chỉ mục khi dựng lại — xóa bản ghi "
                           "này hoặc khôi phục thư mục audit/corrections/ từ bản sao lưu"))
    for doc_id, versions in sorted(audited.all().items()):
        for version, digest in sorted(versions.items()):
            key = correction_key(doc_id, version)
            try:
                data = store.get_bytes(key)
            except ObjectMissing:
                problems.append(FixityProblem(
                    kind="missing", key=key, document=doc_id,
                    detail="nhật ký kiểm soát ghi bản chỉnh sửa này nhưng kho không còn: khôi phục từ bản sao lưu; "
                           "đến khi đó văn bản không được hiển thị và bị loại khỏi chỉ mục khi dựng lại"))
                continue
            if hashlib.sha256(data).hexdigest() != digest:  # a recorded version without its SHA-256: not vouched for
                problems.append(FixityProblem(kind="changed", key=key, document=doc_id,
                                              detail="khác bản đã ghi trong nhật ký kiểm soát (SHA-256): bị thay"))
    return problems


# --- values ------------------------------------------------------------------------------------------------


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


def corrected(manifest: DocumentManifest, edits: Sequence[Edit]) -> DocumentManifest:
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


# --- reading and writing -----------------------------------------------------------------------------------


def edits_of(store: ObjectStore, doc_id: str, *, archive: Path | None = None) -> list[Edit]:
    """Every field correction of the document, oldest first (``CorrectionsUnreadable`` when damaged, or when the
    audit trail recorded one the store lost: ``corrections_of``)."""
    return [e for c in corrections_of(store, archive).history(doc_id) for e in c.edits()]


def corrected_manifest(store: ObjectStore, manifest: DocumentManifest, *,
                       archive: Path | None = None) -> DocumentManifest:
    """The stored ``manifest`` with the corrections kept in ``store`` applied (the document readers get)."""
    return corrected(manifest, edits_of(store, manifest.id, archive=archive))


def last_version(edits: Sequence[Edit]) -> int:
    """The version a form built from ``edits`` was made from (0: no correction yet)."""
    return edits[-1].id if edits else 0


def write_correction(store: ObjectStore, doc_id: str, username: str,
                     changes: Sequence[tuple[str, object, object]], *, after: int) -> Correction:
    """Write the changes (field, before, after) as the version following ``after``; call inside ``writing``, and
    record it in the audit trail (``correction_details``). ``VersionConflict`` when that version exists (someone
    corrected the document since ``after``)."""
    correction = Correction(doc_id=doc_id, version=after + 1, username=username,
                            at=datetime.now(UTC).isoformat(timespec="seconds"),
                            changes=tuple(Change(f, b, a) for f, b, a in changes))
    ObjectStoreCorrections(store).add(correction)
    return correction


def record(store: ObjectStore, doc_id: str, username: str, changes: Sequence[tuple[str, object, object]], *,
           after: int) -> list[Edit]:
    """``write_correction``, returning the written edits."""
    return write_correction(store, doc_id, username, changes, after=after).edits()


_held = threading.local()  # the lock files this thread holds (``writing`` may be nested)


@contextmanager
def writing(settings: Settings) -> Iterator[None]:
    """Exclusive right to write the archive's corrections: an ``flock`` on ``ARCHIVE/work/corrections.lock``
    (every process and thread of this machine; re-entrant within a thread)."""
    path = settings.archive_path() / LOCK_FILE
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # separate opens conflict, even between threads
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- the catalog and the search index ----------------------------------------------------------------------


def _open_catalog(settings: Settings) -> SqliteCatalog:
    return SqliteCatalog(settings.archive_path() / CATALOG_FILE)


def reindex_document(settings: Settings, manifest: DocumentManifest, manifest_key: str) -> None:
    """Make the catalog and the search index hold ``manifest`` (a corrected one) now, through the pipeline's own
    commit path (an upsert into Elasticsearch first when that backend is on)."""
    if settings.search_index == "elasticsearch":
        index = build_search_index(settings)
        try:
            index.upsert([entry_of(manifest)])
        finally:
            index.close()
    catalog = _open_catalog(settings)
    try:
        catalog.commit_document(manifest, manifest_key)
    finally:
        catalog.close()


# documents taken out of the catalog and index after a correction could not be indexed (``reindex_or_hide``)


def _pending_dir(archive: Path) -> Path:
    return archive / PENDING_DIR


def mark_pending(archive: Path, doc_id: str, manifest_key: str, reason: str) -> None:
    """Note (durably, before the document is taken out) that ``doc_id`` waits to be re-indexed."""
    folder = _pending_dir(archive)
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"doc_id": doc_id, "manifest_key": manifest_key, "reason": reason[:500],
                       "at": datetime.now(UTC).isoformat(timespec="seconds")}, ensure_ascii=False)
    temp = folder / f".{doc_id}.{os.getpid()}.{threading.get_ident()}.tmp"
    with temp.open("w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, folder / f"{doc_id}.json")


def pending_reindex(archive: Path) -> dict[str, str]:
    """The documents waiting to be re-indexed: id -> manifest key."""
    out: dict[str, str] = {}
    folder = _pending_dir(archive)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[str(data["doc_id"])] = str(data["manifest_key"])
        except (OSError, ValueError, KeyError, TypeError):
            log.error("unreadable re-index marker %s", path)
    return out


def clear_pending(archive: Path, doc_id: str | None = None) -> None:
    """Forget the marker of ``doc_id`` (every marker: ``None``) once it is indexed again."""
    folder = _pending_dir(archive)
    if doc_id is not None:
        (folder / f"{doc_id}.json").unlink(missing_ok=True)
    elif folder.is_dir():
        for path in folder.glob("*.json"):
            path.unlink(missing_ok=True)


def hide_document(settings: Settings, doc_id: str) -> None:
    """Take the document out of the search index(es) and the catalog (fail closed: no reader finds it, at any
    level, until it is re-indexed). The catalog row and its index rows go in one transaction."""
    failed: Exception | None = None
    if settings.search_index == "elasticsearch":
        try:
            index = build_search_index(settings)
            try:
                index.delete([doc_id])
            finally:
                index.close()
        except Exception as exc:  # the catalog still goes: fewer readers find it
            failed = exc
    path = settings.archive_path() / CATALOG_FILE
    if path.exists():
        conn = search_sqlite.connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
                search_sqlite.delete_entries(conn, [doc_id])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
    if failed is not None:
        raise failed


def reindex_or_hide(settings: Settings, manifest: DocumentManifest, manifest_key: str, *, version: int) -> None:
    """``reindex_document``, tried again after each of ``REINDEX_RETRY_DELAYS_S``; when every attempt fails the
    document is marked pending and taken out of the catalog and index (``hide_document``; if even that fails, it
    is tried again in the background), and ``ReindexPending`` is raised: the correction is saved, the document is
    found again once the next start, ``sohoa reindex`` or correction indexes it."""
    archive = settings.archive_path()
    last: Exception | None = None
    for delay in (*REINDEX_RETRY_DELAYS_S, None):
        try:
            reindex_document(settings, manifest, manifest_key)
        except Exception as exc:
            last = exc
            log.warning("re-indexing %s failed: %s", manifest.id, exc)
            if delay is not None:
                time.sleep(delay)
            continue
        clear_pending(archive, manifest.id)
        return
    assert last is not None
    mark_pending(archive, manifest.id, manifest_key, f"{type(last).__name__}: {last}")
    saved = f"Đã lưu chỉnh sửa (bản {version}) của văn bản {manifest.id} nhưng chưa cập nhật được chỉ mục ({last})"
    fix = ("khởi động lại ứng dụng web hoặc chạy sohoa reindex; nếu lỗi lặp lại, kiểm tra catalog.sqlite (đang bị "
           "khóa?) hoặc Elasticsearch")
    try:
        hide_document(settings, manifest.id)
    except Exception as exc:
        log.error("%s could not be taken out of the index either (%s): retrying in the background", manifest.id, exc)
        _retry_in_background(settings, manifest.id)
        raise ReindexPending(f"{saved}, và chưa đưa được văn bản ra khỏi chỉ mục ({exc}): hệ thống đang thử lại",
                             fix=fix) from last
    log.error("%s taken out of the catalog and index until it is re-indexed: %s", manifest.id, last)
    raise ReindexPending(f"{saved}: văn bản tạm thời được đưa ra khỏi danh mục và chỉ mục tìm kiếm cho đến khi "
                         "được lập chỉ mục lại", fix=fix) from last


def _retry_in_background(settings: Settings, doc_id: str) -> None:
    """Until the document is re-indexed or out of the index (its marker cleared, or this process ends): try the
    one, else the other, waiting 2 s, 4 s... up to a minute between attempts."""
    archive = settings.archive_path()

    def run() -> None:
        delay = 2.0
        while doc_id in pending_reindex(archive):
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
            try:
                with writing(settings):
                    manifest_key = pending_reindex(archive).get(doc_id)
                    if manifest_key is None:
                        return
                    try:
                        _reindex_from_store(settings, build_object_store(settings), doc_id, manifest_key)
                        return
                    except CorrectionsUnreadable:
                        pass  # stays out of the index until its corrections are restored
                    hide_document(settings, doc_id)
                    return
            except Exception as exc:
                log.warning("re-indexing %s: still failing (%s)", doc_id, exc)

    threading.Thread(target=run, name=f"sohoa-reindex-{doc_id}", daemon=True).start()


def _reindex_from_store(settings: Settings, store: ObjectStore, doc_id: str, manifest_key: str,
                        port: CorrectionStore | None = None) -> None:
    """Index the stored manifest with its corrections applied, and clear its pending marker; call in ``writing``.
    ``CorrectionsUnreadable`` (nothing indexed) when its corrections are damaged or lost."""
    machine = DocumentManifest.model_validate_json(store.get_bytes(manifest_key))
    port = port or corrections_of(store, settings.archive_path())
    manifest = corrected(machine, [e for c in port.history(doc_id) for e in c.edits()])
    reindex_document(settings, manifest, manifest_key)
    clear_pending(settings.archive_path(), doc_id)


def reapply(settings: Settings, store: ObjectStore, doc_ids: Iterable[str] | None = None) -> int:
    """Re-apply the corrections of every corrected document (or of ``doc_ids``) that the catalog holds, and index
    again every document taken out after a failed re-index (``reindex_or_hide``); returns how many. A document
    whose corrections are unreadable is left as it is (reported)."""
    archive = settings.archive_path()
    port = corrections_of(store, archive)
    edited = sorted(port.documents() if doc_ids is None else set(doc_ids))
    waiting = pending_reindex(archive) if doc_ids is None else {}
    if not (edited or waiting) or not (archive / CATALOG_FILE).exists():
        return 0
    count = 0
    catalog = _open_catalog(settings)
    try:
        entries = {d: e.manifest_key for d in edited if (e := catalog.get(d)) is not None}
    finally:
        catalog.close()
    entries |= {d: k for d, k in waiting.items() if d not in entries}
    for doc_id, manifest_key in entries.items():
        with writing(settings):  # a correction saved meanwhile is not undone by a stale re-apply
            try:
                _reindex_from_store(settings, store, doc_id, manifest_key, port)
            except ObjectMissing:
                log.warning("corrections of %s kept, but its manifest is missing", doc_id)
                continue
            except CorrectionsUnreadable as exc:
                log.error("%s", exc)
                continue
        count += 1
    return count


def rebuild_index(store: ObjectStore, catalog: SqliteCatalog, external: SearchIndex | None = None, *,
                  archive: Path | None = None) -> ReindexReport:
    """``flows.preservation.rebuild_index`` with the corrections applied: the catalog and index are rebuilt from
    the stored manifests AND their corrections, in one transaction. A document whose corrections cannot be read
    — damaged, or recorded in ``archive``'s audit trail (default: the embedded store's archive) but lost from the
    store — is reported and not indexed (like a manifest that fails its seal): it would otherwise be shown as the
    machine read it, perhaps below the classification an archivist gave it. Clears ``archive``'s pending
    re-index markers."""
    started = time.monotonic()
    report = ReindexReport(store=store.describe())
    port = corrections_of(store, archive)
    edited = port.documents()

    def documents(problems: list[FixityProblem]) -> Iterator[tuple[DocumentManifest, str]]:
        for manifest, key in stored_manifests(store, problems):
            if manifest.id not in edited:
                yield manifest, key
                continue
            try:
                yield corrected(manifest, [e for c in port.history(manifest.id) for e in c.edits()]), key
            except CorrectionsUnreadable as exc:
                problems.append(FixityProblem(kind="unreadable", key=corrections_prefix(manifest.id),
                                              document=manifest.id, detail=exc.message))

    if external is not None:
        external.replace_all(entry_of(m) for m, _ in documents([]))
    report.documents_indexed = catalog.rebuild(documents(report.problems))
    if archive is not None:
        clear_pending(archive)
    report.elapsed_s = round(time.monotonic() - started, 2)
    return report


# --- corrections kept in web.sqlite3 by earlier versions -----------------------------------------------------

_migrated: set[tuple[str, str]] = set()
_MIGRATION_TABLE = """CREATE TABLE IF NOT EXISTS corrections_migrated (
    doc_id TEXT PRIMARY KEY, versions INTEGER NOT NULL, at TEXT NOT NULL)"""


def _legacy_corrections(doc_id: str, rows: Sequence[tuple[object, ...]]) -> list[Correction]:
    """The rows (id, field, before, after, username, at) of one document as corrections: the rows one save
    wrote (same user, same time, consecutive) are one version."""
    groups: list[list[tuple[object, ...]]] = []
    for row in rows:
        if groups and groups[-1][-1][4:6] == row[4:6]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return [Correction(doc_id=doc_id, version=n, username=str(group[0][4]), at=str(group[0][5]),
                       changes=tuple(Change(str(r[1]), json.loads(str(r[2])), json.loads(str(r[3]))) for r in group),
                       migrated_from=tuple(int(str(r[0])) for r in group))
            for n, group in enumerate(groups, 1)]


def migrate_legacy(settings: Settings, store: ObjectStore) -> int:
    """Copy the corrections an earlier version kept in ``ARCHIVE/web.sqlite3`` into ``store`` (the archive's
    own), once: each migrated document is noted in web.sqlite3 (``corrections_migrated``), and the copies are
    deterministic, so an interrupted migration resumes where it stopped. The documents it wrote corrections of
    are re-indexed with them. Returns the corrections written."""
    from flows.audit import record as audit_record

    path = web_db_path(settings.archive_path())
    cache = (str(path), store.describe())
    if cache in _migrated or not path.exists():
        return 0
    written: dict[str, int] = {}
    with writing(settings):
        db = WebDb(path)
        with db.connect() as conn:
            conn.execute(_MIGRATION_TABLE)
            pending = [str(r[0]) for r in conn.execute(
                "SELECT DISTINCT doc_id FROM edits WHERE doc_id NOT IN (SELECT doc_id FROM corrections_migrated) "
                "ORDER BY doc_id")]
        port = ObjectStoreCorrections(store)  # the audit trail may name versions this migration restores
        for doc_id in pending:
            with db.connect() as conn:
                rows = conn.execute("SELECT id, field, before, after, username, at FROM edits WHERE doc_id = ? "
                                    "ORDER BY id", (doc_id,)).fetchall()
            legacy = _legacy_corrections(doc_id, rows)
            try:
                stored = port.history(doc_id)
            except CorrectionsUnreadable as exc:
                log.error("not migrated: %s", exc)
                continue
            if [c.to_bytes() for c in stored[:len(legacy)]] == [c.to_bytes() for c in legacy[:len(stored)]]:
                for correction in legacy[len(stored):]:
                    # recorded first: a reader never sees a version the trail does not know (were the write to
                    # fail, the trail names a version the store lacks, and the next migration writes it)
                    audit_record(settings, CORRECTION_ACTION, doc_id, details=correction_details(correction)
                                 | {"migrated_from": list(correction.migrated_from)})
                    port.add(correction)
                    written[doc_id] = written.get(doc_id, 0) + 1
            else:
                log.warning("corrections of %s in the store differ from those in %s: the store's are kept",
                            doc_id, path)
            with db.connect() as conn:
                conn.execute("INSERT OR REPLACE INTO corrections_migrated(doc_id, versions, at) VALUES (?,?,?)",
                             (doc_id, len(legacy), datetime.now(UTC).isoformat(timespec="seconds")))
        if written:
            log.info("copied %d corrections from %s into %s", sum(written.values()), path, store.describe())
            reapply(settings, store, written)
    _migrated.add(cache)
    return sum(written.values())


__all__ = [
    "CHOICES", "CORRECTION_ACTION", "EDITABLE_METADATA", "AuditedCorrections", "Change", "Correction",
    "CorrectionStore", "CorrectionsUnreadable", "Edit", "EditError", "ObjectStoreCorrections", "ReindexPending",
    "VersionConflict", "audit_problems", "clear_pending", "corrected", "corrected_manifest", "correction_details",
    "corrections_of", "current_value", "edits_of", "field_label", "hide_document", "last_version", "mark_pending",
    "migrate_legacy", "normalise_value", "pending_reindex", "reapply", "rebuild_index", "record", "reindex_document",
    "reindex_or_hide", "write_correction", "writing",
]
