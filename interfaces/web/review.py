"""The review queue and corrections: record an archivist's edits (versioned records in the object store,
``flows.corrections``) and make the search index hold the corrected document at once.

The catalog row and the index entries of a corrected document are rewritten through the same path the pipeline
uses (``SqliteCatalog.commit_document``, preceded by an upsert into Elasticsearch when that backend is on), fed
with the corrected manifest; the stored manifest is never rewritten. A re-index that keeps failing takes the
document out of the catalog and index (``flows.corrections.reindex_or_hide``). ``resync`` re-applies every
correction at start and indexes such documents again (``sohoa reindex`` applies them too,
``flows.corrections.rebuild_index``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from flows import approvals, corrections
from flows.access import catalog_levels, visible_reasons, visible_status
from flows.accounts import User
from flows.corrections import VersionConflict, corrected, current_value, normalise_value, writing
from flows.queries import open_catalog
from interfaces.web.service import DocumentView, WebState, load_document
from schemas.document import DocumentManifest
from storage.catalog import CatalogEntry
from storage.layout import CORRECTIONS, correction_of

log = logging.getLogger("sohoa.web")


def reindex_document(state: WebState, manifest: DocumentManifest, manifest_key: str, *, version: int = 0) -> None:
    """Make the catalog and the search index hold ``manifest`` (a corrected one) now, retrying; when that keeps
    failing the document is taken out of them until it is re-indexed (``ReindexPending``,
    ``flows.corrections.reindex_or_hide``): never left findable at its level before the correction."""
    corrections.reindex_or_hide(state.settings, manifest, manifest_key, version=version)


def apply_changes(state: WebState, user: User, doc_id: str, submitted: Mapping[str, object], *,
                  version: int | None = None) -> list[str]:
    """Record the fields of ``submitted`` whose value differs from the document's current one, then re-index.

    ``version``: the id of the last edit the form was built from (0: none); when someone has corrected the
    document since, nothing is written (``EditError``), so a stale form never undoes another archivist's work.
    Returns the changed fields (none: nothing is written). ``EditError`` for a value that cannot be accepted.

    Each correction written is recorded in the audit trail with its version (``correction.record``), the keyed
    record ``sohoa verify`` and ``reindex`` check the store against; ``ReindexPending`` when it could not be
    indexed (the document is then out of the catalog and index until it is)."""
    with writing(state.settings):  # one writer at a time: the corrections read below are the latest
        view = load_document(state, doc_id, user)
        if version is not None and version != last_version(view):
            raise VersionConflict()
        # every version the audit trail recorded must still be in the store (checked here for any store: a lost
        # newest version would otherwise be silently rewritten by this one)
        corrections.edits_of(state.store, doc_id, archive=state.settings.archive_path())
        changes: list[tuple[str, object, object]] = []
        for name, value in submitted.items():
            after = normalise_value(name, value)
            before = current_value(view.manifest, name)
            if after != before:
                changes.append((name, before, after))
        # four eyes: a lowered classification (giải mật) waits for a second admin; the other fields go on
        changes = approvals.hold_lowering(state.db, user, doc_id, changes, audit=state.audit)
        if not changes:
            return []
        # a new version in the object store (compare-and-set: VersionConflict if one was written since)
        correction = corrections.write_correction(state.store, doc_id, user.username, changes,
                                                  after=last_version(view))
        try:
            state.audit.append(actor=user.username, source="web", action=corrections.CORRECTION_ACTION,
                               target=doc_id, details=corrections.correction_details(correction))
        finally:  # indexed (or taken out of the index) even when the entry could not be written
            reindex_document(state, corrected(view.machine, [*view.edits, *correction.edits()]),
                             view.entry.manifest_key, version=correction.version)
    log.info("corrected %s: %s by %s", doc_id, ", ".join(f for f, _, _ in changes), user.username)
    return [f for f, _, _ in changes]


def last_version(view: DocumentView) -> int:
    return corrections.last_version(view.edits)


@dataclass(frozen=True)
class QueueItem:
    entry: CatalogEntry
    corrections: int


def review_queue(state: WebState, user: User) -> list[QueueItem]:
    """Documents still needing review that the user may see, in catalog order."""
    counts = Counter(where[0] for k in state.store.list(CORRECTIONS) if (where := correction_of(k)) is not None)
    items = []
    catalog = open_catalog(state.settings)
    try:
        for entry in catalog.entries():
            if entry.status != "needs_review" or not user.principal.may_see(entry.metadata.get("classification")):
                continue
            reasons = visible_reasons(user.principal, entry.review_reasons, catalog_levels(catalog))
            if visible_status(entry.status, entry.review_reasons, reasons) == "needs_review":
                shown = dataclasses.replace(entry, review_reasons=reasons)
                items.append(QueueItem(entry=shown, corrections=counts[entry.id]))
    finally:
        catalog.close()
    return items


def resync(state: WebState) -> int:
    """Re-apply the corrections of every corrected document to the catalog and index; returns how many."""
    return corrections.reapply(state.settings, state.store)


__all__ = ["DocumentView", "QueueItem", "apply_changes", "last_version", "reindex_document", "resync", "review_queue"]
