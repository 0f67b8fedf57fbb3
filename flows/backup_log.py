"""The record of ``sohoa backup`` runs: one JSON line per run in ``<archive>/backup-log.jsonl``.

Nothing recorded when a backup last ran before this log existed (the audit trail holds a ``backup`` entry at the
START of each run, never its outcome). Each line keeps the run's times, source and target, its counts and, for
its problems, the ids of the documents they concern (so a reader's view can leave out the documents above their
clearance: ``flows.status``). Appended after the run; a line that cannot be read is skipped by readers.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from flows.jsonl_log import append_entry, read_entries
from schemas.fixity import BackupReport

BACKUP_LOG = "backup-log.jsonl"


class BackupEntry(BaseModel):
    """One backup run as the log keeps it."""

    started_at: str
    finished_at: str
    source: str
    target: str
    objects_seen: int = 0
    objects_copied: int = 0
    objects_repaired: int = 0
    bytes_copied: int = 0
    problem_documents: list[str] = Field(default_factory=list)  # documents with an object not copied
    store_problems: int = 0  # problems naming no document (objects outside any document)
    database_dump: str | None = None  # the key of the database's pg_dump in the target (SOHOA_DATABASE_URL)


def record_backup(archive: Path, report: BackupReport) -> BackupEntry:
    """Append the outcome of a backup run to the archive's backup log."""
    entry = BackupEntry(
        started_at=report.started_at, finished_at=report.finished_at, source=report.source, target=report.target,
        objects_seen=report.objects_seen, objects_copied=report.objects_copied,
        objects_repaired=report.objects_repaired, bytes_copied=report.bytes_copied,
        problem_documents=sorted({p.document for p in report.problems if p.document}),
        store_problems=sum(1 for p in report.problems if not p.document),
        database_dump=report.database_dump.key if report.database_dump else None)
    append_entry(archive / BACKUP_LOG, entry)
    return entry


def last_backup(archive: Path) -> BackupEntry | None:
    """The latest backup run recorded in the archive's log (by finishing time), or ``None``."""
    entries = read_entries(archive / BACKUP_LOG, BackupEntry)
    return max(entries, key=lambda e: e.finished_at, default=None)
