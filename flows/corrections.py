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

Modules: ``flows.correction_records`` (records, values, ``corrected``), ``flows.correction_store`` (the port, the
audited object store, ``writing``), ``flows.correction_index`` (catalog and index), ``flows.correction_legacy``
(the web.sqlite3 migration); this module re-exports their public names.
"""

from __future__ import annotations

from flows.correction_index import (
    PENDING_DIR,
    REINDEX_RETRY_DELAYS_S,
    clear_pending,
    hide_document,
    mark_pending,
    pending_reindex,
    reapply,
    rebuild_index,
    reindex_document,
    reindex_or_hide,
)
from flows.correction_legacy import migrate_legacy
from flows.correction_records import (
    CHOICES,
    CORRECTION_ACTION,
    EDITABLE_METADATA,
    Change,
    Correction,
    CorrectionsUnreadable,
    Edit,
    EditError,
    ReindexPending,
    VersionConflict,
    corrected,
    current_value,
    field_label,
    normalise_value,
)
from flows.correction_store import (
    LOCK_FILE,
    AuditedCorrections,
    CorrectionStore,
    ObjectStoreCorrections,
    audit_problems,
    corrected_manifest,
    correction_details,
    corrections_of,
    edits_of,
    last_version,
    record,
    write_correction,
    writing,
)

__all__ = [
    "CHOICES", "CORRECTION_ACTION", "EDITABLE_METADATA", "LOCK_FILE", "PENDING_DIR", "REINDEX_RETRY_DELAYS_S",
    "AuditedCorrections", "Change", "Correction",
    "CorrectionStore", "CorrectionsUnreadable", "Edit", "EditError", "ObjectStoreCorrections", "ReindexPending",
    "VersionConflict", "audit_problems", "clear_pending", "corrected", "corrected_manifest", "correction_details",
    "corrections_of", "current_value", "edits_of", "field_label", "hide_document", "last_version", "mark_pending",
    "migrate_legacy", "normalise_value", "pending_reindex", "reapply", "rebuild_index", "record", "reindex_document",
    "reindex_or_hide", "write_correction", "writing",
]
