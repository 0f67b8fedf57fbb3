"""The review queue and corrections: record an archivist's edits (versioned) and make the search index hold the
corrected document at once.

The catalog row and the index entries of a corrected document are rewritten through the same path the pipeline
uses (``SqliteCatalog.commit_document``, preceded by an upsert into Elasticsearch when that backend is on), fed
with the corrected manifest; the stored manifest is never rewritten. ``resync`` re-applies every correction (the
catalog and index are rebuilt from the stored manifests by ``sohoa reindex``, which knows nothing of them).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from flows.queries import open_catalog, visible_reasons
from flows.web.accounts import User
from flows.web.edits import (
    Edit,
    EditError,
    corrected,
    current_value,
    edited_documents,
    edits_of,
    normalise_value,
    record,
)
from flows.web.service import DocumentView, WebState, load_document
from flows.wiring import build_search_index
from schemas.document import DocumentManifest
from schemas.search import secrecy_level
from storage.catalog import CatalogEntry
from storage.objects import ObjectMissing
from storage.search_index import entry_of

log = logging.getLogger("sohoa.web")


def reindex_document(state: WebState, manifest: DocumentManifest, manifest_key: str) -> None:
    """Make the catalog and the search index hold ``manifest`` (a corrected one) now."""
    if state.settings.search_index == "elasticsearch":
        index = build_search_index(state.settings)
        try:
            index.upsert([entry_of(manifest)])
        finally:
            index.close()
    catalog = open_catalog(state.settings)
    try:
        catalog.commit_document(manifest, manifest_key)
    finally:
        catalog.close()


def apply_changes(state: WebState, user: User, doc_id: str, submitted: Mapping[str, object], *,
                  version: int | None = None) -> list[str]:
    """Record the fields of ``submitted`` whose value differs from the document's current one, then re-index.

    ``version``: the id of the last edit the form was built from (0: none); when someone has corrected the
    document since, nothing is written (``EditError``), so a stale form never undoes another archivist's work.
    Returns the changed fields (none: nothing is written). ``EditError`` for a value that cannot be accepted."""
    with state.db.transaction() as conn:  # one writer at a time: the edits read below are the latest
        view = load_document(state, doc_id, user)
        if version is not None and version != last_version(view):
            raise EditError("Văn bản vừa được người khác chỉnh sửa: tải lại trang để xem bản mới rồi sửa lại")
        changes: list[tuple[str, object, object]] = []
        for name, value in submitted.items():
            after = normalise_value(name, value)
            before = current_value(view.manifest, name)
            if after != before:
                changes.append((name, before, after))
        if not changes:
            return []
        record(conn, doc_id, user.username, changes)
        edits = [*view.edits, *(Edit(0, doc_id, f, b, a, user.username, "") for f, b, a in changes)]
        reindex_document(state, corrected(view.machine, edits), view.entry.manifest_key)
    log.info("corrected %s: %s by %s", doc_id, ", ".join(f for f, _, _ in changes), user.username)
    return [f for f, _, _ in changes]


def last_version(view: DocumentView) -> int:
    return view.edits[-1].id if view.edits else 0


@dataclass(frozen=True)
class QueueItem:
    entry: CatalogEntry
    corrections: int


def review_queue(state: WebState, user: User) -> list[QueueItem]:
    """Documents still needing review that the user may see, in catalog order."""
    with state.db.connect() as conn:
        counts = dict(conn.execute("SELECT doc_id, count(*) FROM edits GROUP BY doc_id").fetchall())
    items = []
    catalog = open_catalog(state.settings)
    try:
        for entry in catalog.entries():
            classification = entry.metadata.get("classification")
            level = secrecy_level(classification if isinstance(classification, str) else None)
            if entry.status == "needs_review" and level <= user.clearance:
                shown = dataclasses.replace(entry, review_reasons=visible_reasons(entry.review_reasons,
                                                                                  user.clearance, catalog))
                items.append(QueueItem(entry=shown, corrections=int(counts.get(entry.id, 0))))
    finally:
        catalog.close()
    return items


def resync(state: WebState) -> int:
    """Re-apply the corrections of every edited document to the catalog and index; returns how many."""
    edited = edited_documents(state.db)
    if not edited:
        return 0
    count = 0
    catalog = open_catalog(state.settings)
    try:
        for doc_id in edited:
            entry = catalog.get(doc_id)
            if entry is None:
                continue
            try:
                machine = DocumentManifest.model_validate_json(state.store.get_bytes(entry.manifest_key))
            except ObjectMissing:
                log.warning("corrections of %s kept, but its manifest is missing", doc_id)
                continue
            reindex_document(state, corrected(machine, edits_of(state.db, doc_id)), entry.manifest_key)
            count += 1
    finally:
        catalog.close()
    return count


__all__ = ["DocumentView", "QueueItem", "apply_changes", "last_version", "reindex_document", "resync", "review_queue"]
