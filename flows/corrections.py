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
never show a document to a reader without clearance.

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
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from flows.preservation import stored_manifests
from flows.wiring import CATALOG_FILE, build_search_index
from schemas.document import DocumentManifest
from schemas.errors import SohoaError
from schemas.fixity import FixityProblem, ReindexReport
from schemas.metadata import CLASSIFICATIONS, URGENCIES, DocumentMetadata
from schemas.settings import Settings
from schemas.text import nfc
from storage.accounts_db import WebDb, web_db_path
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


class EditError(ValueError):
    """A correction that cannot be accepted (Vietnamese message for the form)."""


class VersionConflict(EditError):
    """Someone corrected the document since the version the correction was made from."""

    def __init__(self) -> None:
        super().__init__("Văn bản vừa được người khác chỉnh sửa: tải lại trang để xem bản mới rồi sửa lại")


class CorrectionsUnreadable(SohoaError):
    """A document's corrections are damaged or incomplete in the store: the document cannot be shown safely."""

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


class ObjectStoreCorrections:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def history(self, doc_id: str) -> list[Correction]:
        versions = []
        for key in self.store.list(corrections_prefix(doc_id)):
            where = correction_of(key)
            if where is not None and where[0] == doc_id:
                versions.append((where[1], key))
        out = []
        for expected, (version, key) in enumerate(sorted(versions), 1):
            if version != expected:
                raise _unreadable(doc_id, f"thiếu bản chỉnh sửa số {expected} trong kho")
            try:
                data = self.store.get_bytes(key)
            except ObjectMissing as exc:
                raise _unreadable(doc_id, f"thiếu {key} trong kho") from exc
            out.append(Correction.from_bytes(data, key=key))
        return out

    def documents(self) -> set[str]:
        return {w[0] for k in self.store.list(CORRECTIONS) if (w := correction_of(k)) is not None}

    def add(self, correction: Correction) -> None:
        key = correction_key(correction.doc_id, correction.version)
        if self.store.exists(key):
            raise VersionConflict()
        try:
            self.store.put_bytes(key, correction.to_bytes())
        except ImmutableObjectError as exc:  # written meanwhile by another writer
            raise VersionConflict() from exc


def corrections_of(store: ObjectStore) -> CorrectionStore:
    return ObjectStoreCorrections(store)


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


def edits_of(store: ObjectStore, doc_id: str) -> list[Edit]:
    """Every field correction of the document, oldest first (``CorrectionsUnreadable`` when damaged)."""
    return [e for c in corrections_of(store).history(doc_id) for e in c.edits()]


def corrected_manifest(store: ObjectStore, manifest: DocumentManifest) -> DocumentManifest:
    """The stored ``manifest`` with the corrections kept in ``store`` applied (the document readers get)."""
    return corrected(manifest, edits_of(store, manifest.id))


def last_version(edits: Sequence[Edit]) -> int:
    """The version a form built from ``edits`` was made from (0: no correction yet)."""
    return edits[-1].id if edits else 0


def record(store: ObjectStore, doc_id: str, username: str, changes: Sequence[tuple[str, object, object]], *,
           after: int) -> list[Edit]:
    """Write the changes (field, before, after) as the version following ``after``; call inside ``writing``.
    ``VersionConflict`` when that version exists (someone corrected the document since ``after``)."""
    correction = Correction(doc_id=doc_id, version=after + 1, username=username,
                            at=datetime.now(UTC).isoformat(timespec="seconds"),
                            changes=tuple(Change(f, b, a) for f, b, a in changes))
    corrections_of(store).add(correction)
    return correction.edits()


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


def reapply(settings: Settings, store: ObjectStore, doc_ids: Iterable[str] | None = None) -> int:
    """Re-apply the corrections of every corrected document (or of ``doc_ids``) that the catalog holds; returns
    how many."""
    edited = sorted(corrections_of(store).documents() if doc_ids is None else set(doc_ids))
    if not edited or not (settings.archive_path() / CATALOG_FILE).exists():
        return 0
    count = 0
    catalog = _open_catalog(settings)
    try:
        entries = [(d, e) for d in edited if (e := catalog.get(d)) is not None]
    finally:
        catalog.close()
    for doc_id, entry in entries:
        with writing(settings):  # a correction saved meanwhile is not undone by a stale re-apply
            try:
                machine = DocumentManifest.model_validate_json(store.get_bytes(entry.manifest_key))
            except ObjectMissing:
                log.warning("corrections of %s kept, but its manifest is missing", doc_id)
                continue
            try:
                manifest = corrected_manifest(store, machine)
            except CorrectionsUnreadable as exc:
                log.error("%s", exc)
                continue
            reindex_document(settings, manifest, entry.manifest_key)
        count += 1
    return count


def rebuild_index(store: ObjectStore, catalog: SqliteCatalog, external: SearchIndex | None = None) -> ReindexReport:
    """``flows.preservation.rebuild_index`` with the corrections applied: the catalog and index are rebuilt from
    the stored manifests AND their corrections, in one transaction. A document whose corrections cannot be read
    is reported and not indexed (like a manifest that fails its seal): it would otherwise be shown as the machine
    read it, perhaps below the classification an archivist gave it."""
    started = time.monotonic()
    report = ReindexReport(store=store.describe())
    port = corrections_of(store)
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
        port = corrections_of(store)
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
    "CHOICES", "EDITABLE_METADATA", "Change", "Correction", "CorrectionStore", "CorrectionsUnreadable", "Edit",
    "EditError", "ObjectStoreCorrections", "VersionConflict", "corrected", "corrected_manifest", "corrections_of",
    "current_value", "edits_of", "field_label", "last_version", "migrate_legacy", "normalise_value", "reapply",
    "rebuild_index", "record", "reindex_document", "writing",
]
