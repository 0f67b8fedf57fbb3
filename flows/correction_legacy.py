"""Corrections an earlier version kept in ``ARCHIVE/web.sqlite3`` (table ``edits``): copied into the object
store once (``migrate_legacy``: idempotent, resumable; the table is left as it was). The whole design:
``flows.corrections``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from flows.correction_index import reapply
from flows.correction_records import CORRECTION_ACTION, Change, Correction, CorrectionsUnreadable
from flows.correction_store import ObjectStoreCorrections, correction_details, writing
from flows.wiring import open_accounts_db_at
from schemas.settings import Settings
from storage.accounts_db import web_db_path
from storage.objects import ObjectStore

log = logging.getLogger("sohoa.corrections")
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
        db = open_accounts_db_at(path)
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
