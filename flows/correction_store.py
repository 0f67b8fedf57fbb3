"""Where corrections live: the port (``CorrectionStore``), the object store's write-once versions checked
against the archive's audit trail (``ObjectStoreCorrections``, ``AuditedCorrections``), reading and writing them,
and the one-writer lock (``writing``). The whole design: ``flows.corrections``.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from flows.audit import ANCHOR_FILE, AUDIT_FILE, STORE_ANCHOR, archive_of_store
from flows.audit_anchor import database_of, open_trail, unreadable_trail
from flows.correction_records import CORRECTION_ACTION, Change, Correction, Edit, VersionConflict, corrected, unreadable
from flows.pdf_text import with_current_pdfa
from schemas.document import DocumentManifest
from schemas.fixity import FixityProblem
from schemas.settings import Settings
from storage.audit import Anchor, trail_exists
from storage.db import driver_errors
from storage.layout import CORRECTIONS, correction_key, correction_of, corrections_prefix
from storage.objects import ImmutableObjectError, ObjectMissing, ObjectStore

LOCK_FILE = "work/corrections.lock"


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
        database = database_of(self.archive)
        if database is not None:
            return trail_exists(self.archive / AUDIT_FILE, self.archive / ANCHOR_FILE, database=database)
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
            trail = open_trail(self.archive, None)
        except unreadable_trail():
            return True
        try:
            return trail.hash_at(anchor.seq) == anchor.last
        except driver_errors():
            return True
        finally:
            trail.close()

    def _read(self, target: str | None) -> dict[str, dict[int, str]]:
        try:
            trail = open_trail(self.archive, None)
        except unreadable_trail():
            return {}
        out: dict[str, dict[int, str]] = {}
        try:
            for entry in trail.entries(action=CORRECTION_ACTION, target=target):
                version, digest = entry.details.get("version"), entry.details.get("sha256")
                if isinstance(version, int) and version >= 1:
                    out.setdefault(entry.target, {})[version] = digest if isinstance(digest, str) else ""
        except driver_errors():  # an unreadable trail is reported by sohoa audit verify
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
            raise unreadable(doc_id, f"nhật ký kiểm soát ghi bản chỉnh sửa số {version} nhưng kho không còn "
                                     f"{correction_key(doc_id, version)}: bản ghi bị xóa")
        out = []
        for expected, (version, key) in enumerate(sorted(versions), 1):
            if version != expected:
                raise unreadable(doc_id, f"thiếu bản chỉnh sửa số {expected} trong kho")
            try:
                data = self.store.get_bytes(key)
            except ObjectMissing as exc:
                raise unreadable(doc_id, f"thiếu {key} trong kho") from exc
            if vouched and version not in known:
                raise unreadable(doc_id, f"{key} không được ghi trong nhật ký kiểm soát: bản ghi không do hệ "
                                         "thống lưu (chép thẳng vào kho?)")
            if version in known and hashlib.sha256(data).hexdigest() != known[version]:
                raise unreadable(doc_id, f"{key} khác bản đã ghi trong nhật ký kiểm soát: bản ghi bị thay")
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


def edits_of(store: ObjectStore, doc_id: str, *, archive: Path | None = None) -> list[Edit]:
    """Every field correction of the document, oldest first (``CorrectionsUnreadable`` when damaged, or when the
    audit trail recorded one the store lost: ``corrections_of``)."""
    return [e for c in corrections_of(store, archive).history(doc_id) for e in c.edits()]


def corrected_manifest(store: ObjectStore, manifest: DocumentManifest, *,
                       archive: Path | None = None) -> DocumentManifest:
    """The stored ``manifest`` with the corrections kept in ``store`` applied (the document readers get)."""
    edits = edits_of(store, manifest.id, archive=archive)
    return with_current_pdfa(store, corrected(manifest, edits), edits)


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
