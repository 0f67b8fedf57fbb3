"""Reviewing a document: read it as a person may see it, correct it, and list what still needs review.

Used by the web app (the review queue, the correction form, the admin's approval of a held lowering) and by any
other interface: nothing here knows about requests or pages.

A correction is a versioned record in the object store (``flows.corrections``); the catalog row and the index
entries of a corrected document are rewritten through the path the pipeline uses (``Catalog.commit_document``,
preceded by an upsert into Elasticsearch when that backend is on), fed with the corrected manifest; the stored
manifest is never rewritten. A re-index that keeps failing takes the document out of the catalog and index
(``flows.corrections.reindex_or_hide``). ``resync`` re-applies every correction (``sohoa reindex`` applies them too,
``flows.corrections.rebuild_index``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from flows import approvals, corrections, pdf_text
from flows.access import Principal, catalog_levels, visible_reasons, visible_status
from flows.accounts import User
from flows.corrections import Edit, VersionConflict, corrected, current_value, edits_of, normalise_value, writing
from flows.queries import open_catalog
from schemas.document import DocumentManifest, StoredFile
from schemas.errors import NotFoundError
from schemas.settings import Settings
from storage.accounts_db import WebDb
from storage.audit import AuditLog
from storage.catalog import CatalogEntry
from storage.layout import CORRECTIONS, correction_of
from storage.objects import ObjectMissing, ObjectStore

log = logging.getLogger("sohoa.review")

DOC_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def not_found() -> NotFoundError:
    return NotFoundError("Không tìm thấy văn bản", fix="kiểm tra lại mã văn bản hoặc tìm kiếm lại")


@dataclass(frozen=True)
class DocumentView:
    entry: CatalogEntry
    machine: DocumentManifest  # as stored (the machine extraction)
    manifest: DocumentManifest  # with the archivists' corrections applied
    edits: list[Edit]
    granted: bool = False  # readable only through an access grant (``Principal.grants``): read-only, audited

    @property
    def pdfa(self) -> StoredFile | None:
        return next((f for f in self.manifest.files if f.role == "pdfa"), None)

    @property
    def originals(self) -> list[StoredFile]:
        return [f for f in self.manifest.files if f.role == "original"]


def load_document(settings: Settings, store: ObjectStore, doc_id: str, principal: Principal) -> DocumentView:
    """The document as ``principal`` may see it; ``NotFoundError`` when missing OR above the principal's clearance
    (unless the principal carries an active grant for it: ``Principal.may_read``; the view is then ``granted``).
    Review reasons naming a document the principal may not see are withheld (``flows.access.visible_reasons``)."""
    if not DOC_ID_RE.match(doc_id):
        raise not_found()
    catalog = open_catalog(settings)
    try:
        entry = catalog.get(doc_id)
        if entry is None:
            raise not_found()
        # the catalog row carries the corrected metadata: refuse before reading anything else
        if not principal.may_read(doc_id, entry.metadata.get("classification")):
            raise not_found()
        reasons = visible_reasons(principal, entry.review_reasons, catalog_levels(catalog))
    finally:
        catalog.close()
    entry = dataclasses.replace(entry, review_reasons=reasons,
                                status=visible_status(entry.status, entry.review_reasons, reasons))
    try:
        machine = DocumentManifest.model_validate_json(store.get_bytes(entry.manifest_key))
    except ObjectMissing as exc:
        raise not_found() from exc
    # the archivists' corrections (object store, flows.corrections), checked against the audit trail
    edits = edits_of(store, doc_id, archive=settings.archive_path())
    manifest = pdf_text.with_current_pdfa(store, corrected(machine, edits), edits)  # the newest regenerated PDF/A
    if not principal.may_read(doc_id, manifest.metadata.classification):
        raise not_found()
    manifest = manifest.model_copy(update={
        "review_reasons": reasons if manifest.review_reasons else [],
        "status": visible_status(manifest.status, manifest.review_reasons, reasons if manifest.review_reasons else [])})
    return DocumentView(entry=entry, machine=machine, manifest=manifest, edits=edits,
                        granted=principal.granted(doc_id, manifest.metadata.classification)
                        or principal.granted(doc_id, entry.metadata.get("classification")))


def reindex_document(settings: Settings, manifest: DocumentManifest, manifest_key: str, *, version: int = 0) -> None:
    """Make the catalog and the search index hold ``manifest`` (a corrected one) now, retrying; when that keeps
    failing the document is taken out of them until it is re-indexed (``ReindexPending``,
    ``flows.corrections.reindex_or_hide``): never left findable at its level before the correction."""
    corrections.reindex_or_hide(settings, manifest, manifest_key, version=version)


@dataclass(frozen=True)
class Reviewer:
    """What recording a correction needs: the archive, its store, the accounts database (four eyes) and the
    audit trail, and who corrects from where."""

    settings: Settings
    store: ObjectStore
    db: WebDb
    audit: AuditLog
    user: User
    source: str = "web"


def apply_changes(reviewer: Reviewer, doc_id: str, submitted: Mapping[str, object], *,
                  version: int | None = None) -> list[str]:
    """Record the fields of ``submitted`` whose value differs from the document's current one, then re-index.

    ``version``: the id of the last edit the form was built from (0: none); when someone has corrected the
    document since, nothing is written (``EditError``), so a stale form never undoes another archivist's work.
    Returns the changed fields (none: nothing is written). ``EditError`` for a value that cannot be accepted.

    Each correction written is recorded in the audit trail with its version (``correction.record``), the keyed
    record ``sohoa verify`` and ``reindex`` check the store against; ``ReindexPending`` when it could not be
    indexed (the document is then out of the catalog and index until it is)."""
    settings, store, user = reviewer.settings, reviewer.store, reviewer.user
    with writing(settings):  # one writer at a time: the corrections read below are the latest
        view = load_document(settings, store, doc_id, user.principal)
        if version is not None and version != last_version(view):
            raise VersionConflict()
        # every version the audit trail recorded must still be in the store (checked here for any store: a lost
        # newest version would otherwise be silently rewritten by this one)
        corrections.edits_of(store, doc_id, archive=settings.archive_path())
        changes = _changed_fields(view, submitted)
        # four eyes: a lowered classification (giải mật) waits for a second admin; the other fields go on
        changes = approvals.hold_lowering(reviewer.db, user, doc_id, changes, audit=reviewer.audit)
        if not changes:
            return []
        # a new version in the object store (compare-and-set: VersionConflict if one was written since)
        correction = corrections.write_correction(store, doc_id, user.username, changes, after=last_version(view))
        try:
            reviewer.audit.append(actor=user.username, source=reviewer.source, action=corrections.CORRECTION_ACTION,
                                  target=doc_id, details=corrections.correction_details(correction))
        finally:  # indexed (or taken out of the index) even when the entry could not be written
            edits = [*view.edits, *correction.edits()]
            reindex_document(settings, corrected(view.machine, edits), view.entry.manifest_key,
                             version=correction.version)
        # a page's text changed: a new PDF/A with that page's text layer regenerated (a failure is logged and the
        # correction stands: the next correction or re-apply writes it, ``flows.pdf_text``)
        pdf_text.refresh(store, view.machine, corrected(view.machine, edits), edits)
    log.info("corrected %s: %s by %s", doc_id, ", ".join(f for f, _, _ in changes), user.username)
    return [f for f, _, _ in changes]


def _changed_fields(view: DocumentView, submitted: Mapping[str, object]) -> list[tuple[str, object, object]]:
    changes: list[tuple[str, object, object]] = []
    for name, value in submitted.items():
        after = normalise_value(name, value)
        before = current_value(view.manifest, name)
        if after != before:
            changes.append((name, before, after))
    return changes


def last_version(view: DocumentView) -> int:
    return corrections.last_version(view.edits)


@dataclass(frozen=True)
class QueueItem:
    entry: CatalogEntry
    corrections: int


def review_queue(settings: Settings, store: ObjectStore, principal: Principal) -> list[QueueItem]:
    """Documents still needing review that ``principal`` may see, in catalog order."""
    counts = Counter(where[0] for k in store.list(CORRECTIONS) if (where := correction_of(k)) is not None)
    items = []
    catalog = open_catalog(settings)
    try:
        for entry in catalog.entries():
            if entry.status != "needs_review" or not principal.may_see(entry.metadata.get("classification")):
                continue
            reasons = visible_reasons(principal, entry.review_reasons, catalog_levels(catalog))
            if visible_status(entry.status, entry.review_reasons, reasons) == "needs_review":
                shown = dataclasses.replace(entry, review_reasons=reasons)
                items.append(QueueItem(entry=shown, corrections=counts[entry.id]))
    finally:
        catalog.close()
    return items


def resync(settings: Settings, store: ObjectStore) -> int:
    """Re-apply the corrections of every corrected document to the catalog and index; returns how many."""
    return corrections.reapply(settings, store)
