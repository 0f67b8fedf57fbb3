"""Batch registry: the scan batches handed to sohoa, their schedule, state and last run, in the catalog database.

Its tables live in the archive's catalog file (``catalog.sqlite``), next to the catalog's own, and are created with
``IF NOT EXISTS`` so archives from before the registry keep working. Documents are not stored here: the catalog
holds what was archived; the registry keeps, per batch, which of its documents a run attempted (source → document
id), why a document failed (failed documents never reach the catalog) and why one was held at intake, as codes
(``schemas.reasons``; rows of older versions hold a Vietnamese ``error`` sentence, read by ``_outcome``). Like the
catalog, it is operational state, not part of the preserved record (``sohoa reindex`` rebuilds the catalog, never
these tables).

Every state change is one conditional UPDATE, so a cancel and a nightly run racing for the same batch cannot both
win. Times are ISO 8601 strings with their UTC offset, given by the caller (the clock belongs to the flows).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from schemas.reasons import Reason, StoredReason, codes_json, from_legacy_joined, from_legacy_text, stored_reasons

BatchState = Literal["queued", "running", "done", "failed", "cancelled", "partial"]
STATES: tuple[BatchState, ...] = ("queued", "running", "done", "failed", "cancelled", "partial")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    file_code TEXT,
    fonds TEXT,
    title TEXT,
    schedule TEXT NOT NULL,
    state TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    only_sources TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    next_due_at TEXT,
    runner TEXT,
    summary TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches(state);
CREATE TABLE IF NOT EXISTS batch_documents (
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    doc_id TEXT,
    error TEXT,
    updated_at TEXT NOT NULL,
    reasons TEXT,
    held INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, source)
);
CREATE TABLE IF NOT EXISTS batch_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
"""


class BatchSummary(BaseModel):
    """The outcome of a batch's last run: document counts over the whole batch, pages and rate of the run."""

    documents: int = 0  # documents in the batch folder
    done: int = 0
    needs_review: int = 0
    failed: int = 0
    pending: int = 0  # not attempted yet (the window closed, the run was cancelled, or new scans)
    quarantined: int = 0  # stopped at intake (classified, no approval): held until an approval is added
    skipped: int = 0  # already in the archive: nothing redone (this run)
    pages: int = 0  # pages OCR'd by this run
    pages_per_minute: float = 0.0
    elapsed_s: float = 0.0
    stopped: Literal["window", "cancel"] | None = None  # why the run stopped starting documents, if it did


class BatchRecord(BaseModel):
    """One batch in the registry (the ``--json`` contract of ``sohoa batch``)."""

    id: str
    folder: str  # absolute path
    file_code: str | None = None
    fonds: str | None = None
    title: str | None = None
    schedule: str  # "now", "tonight" or a cron expression
    state: BatchState
    cancel_requested: bool = False
    only_sources: list[str] | None = None  # the next run is limited to these documents (retry --failed-only)
    created_at: str
    started_at: str | None = None  # start of the last run
    finished_at: str | None = None  # end of the last run
    next_due_at: str | None = None  # not before this time (cron, retry); None: whenever its schedule allows
    runner: str | None = None  # "host:pid" of the process running it
    summary: BatchSummary | None = None
    error: str | None = None  # a run-level failure (e.g. the folder disappeared)

    @property
    def name(self) -> str:
        """The batch name documents are catalogued under (the folder's name, as ``sohoa digitise`` uses)."""
        return Path(self.folder).name


class DocumentOutcome(BaseModel):
    """What a run made of one document of a batch: its archive id, why it failed, or why it was held at intake."""

    source: str
    doc_id: str | None = None
    failure: StoredReason | None = None  # set when the document failed
    held: bool = False  # stopped at intake (quarantined), for ``held_reasons``
    held_reasons: list[StoredReason] = Field(default_factory=list)
    updated_at: str


_OLD_HELD_MARK = "[cách ly] "  # how versions before codes marked a held document's ``error`` sentence


def _outcome(source: str, doc_id: str | None, error: str | None, reasons: str | None, held: int, at: str
             ) -> DocumentOutcome:
    """A ``batch_documents`` row: codes in ``reasons``, or the ``error`` sentence an older version wrote."""
    outcome = DocumentOutcome(source=source, doc_id=doc_id, updated_at=at)
    if reasons is not None:
        codes = stored_reasons(json.loads(reasons))
        if held:
            return outcome.model_copy(update={"held": True, "held_reasons": codes})
        return outcome.model_copy(update={"failure": codes[0] if codes else None})
    if error is None:
        return outcome
    if error.startswith(_OLD_HELD_MARK):
        held_reasons = from_legacy_joined(error[len(_OLD_HELD_MARK):])
        return outcome.model_copy(update={"held": True, "held_reasons": held_reasons})
    return outcome.model_copy(update={"failure": from_legacy_text(error)})


_COLUMNS = ("id, folder, file_code, fonds, title, schedule, state, cancel_requested, only_sources, created_at, "
            "started_at, finished_at, next_due_at, runner, summary, error")


def _record(row: tuple[object, ...]) -> BatchRecord:
    (id_, folder, file_code, fonds, title, schedule, state, cancel, only, created, started, finished, due, runner,
     summary, error) = row
    return BatchRecord(
        id=str(id_), folder=str(folder), file_code=file_code, fonds=fonds, title=title,  # type: ignore[arg-type]
        schedule=str(schedule), state=state, cancel_requested=bool(cancel),  # type: ignore[arg-type]
        only_sources=json.loads(str(only)) if only is not None else None, created_at=str(created),
        started_at=started, finished_at=finished, next_due_at=due, runner=runner,  # type: ignore[arg-type]
        summary=BatchSummary.model_validate_json(str(summary)) if summary is not None else None,
        error=error,  # type: ignore[arg-type]
    )


class BatchRegistry:
    """The batch tables of the catalog database at ``path`` (its own connection; thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")  # as the catalog: readers never wait for a writer
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            self._add_reason_columns()

    def _add_reason_columns(self) -> None:
        """Registries made before reasons were codes get the ``reasons`` and ``held`` columns."""
        have = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(batch_documents)")}
        for column, kind in (("reasons", "TEXT"), ("held", "INTEGER NOT NULL DEFAULT 0")):
            if column not in have:
                try:
                    self._conn.execute(f"ALTER TABLE batch_documents ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it meanwhile
                    if "duplicate column" not in str(exc):
                        raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> BatchRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _update(self, sql: str, args: Iterable[object]) -> int:
        with self._lock:
            return int(self._conn.execute(sql, tuple(args)).rowcount)

    # --- batches -------------------------------------------------------------------------------------------------

    def add(self, record: BatchRecord) -> bool:
        """Insert a new batch; False when its id is taken (the caller draws another)."""
        try:
            with self._lock:
                self._conn.execute(
                    f"INSERT INTO batches ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                    (record.id, record.folder, record.file_code, record.fonds, record.title, record.schedule,
                     record.state, int(record.cancel_requested),
                     json.dumps(record.only_sources, ensure_ascii=False) if record.only_sources is not None
                     else None, record.created_at, record.started_at, record.finished_at, record.next_due_at,
                     record.runner, record.summary.model_dump_json() if record.summary else None, record.error),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else _record(row)

    def batches(self, *, states: Iterable[BatchState] | None = None) -> list[BatchRecord]:
        """Batches in creation order (optionally only those in ``states``)."""
        sql = f"SELECT {_COLUMNS} FROM batches"
        args: tuple[str, ...] = ()
        if states is not None:
            args = tuple(states)
            sql += f" WHERE state IN ({', '.join('?' * len(args))})"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()  # creation order
        return [_record(row) for row in rows]

    def claim(self, batch_id: str, *, runner: str, now: str, from_states: Iterable[BatchState],
              stale_runner: str | None = None) -> bool:
        """Mark the batch running for ``runner`` if it is in one of ``from_states`` (or running for
        ``stale_runner``, a process known to be gone). True when this caller won the batch."""
        states = tuple(from_states)
        sql = (f"UPDATE batches SET state = 'running', runner = ?, started_at = ?, finished_at = NULL, error = NULL "
               f"WHERE id = ? AND (state IN ({', '.join('?' * len(states))})")
        args: list[object] = [runner, now, batch_id, *states]
        if stale_runner is not None:
            sql += " OR (state = 'running' AND runner = ?)"
            args.append(stale_runner)
        return self._update(sql + ")", args) == 1

    def finish(self, batch_id: str, *, runner: str, state: BatchState, summary: BatchSummary, now: str,
               next_due_at: str | None, error: str | None = None, only_sources: list[str] | None = None) -> bool:
        """End ``runner``'s run of the batch: its new state, summary, next due time and the scope of its next
        run (``only_sources``; None: every document). A cancel request is used up."""
        return self._update(
            "UPDATE batches SET state = ?, summary = ?, finished_at = ?, next_due_at = ?, error = ?, runner = NULL, "
            "only_sources = ?, cancel_requested = 0 WHERE id = ? AND state = 'running' AND runner = ?",
            (state, summary.model_dump_json(), now, next_due_at, error,
             json.dumps(only_sources, ensure_ascii=False) if only_sources is not None else None, batch_id,
             runner)) == 1

    def cancel(self, batch_id: str, *, now: str, from_states: Iterable[BatchState],
               stale_runner: str | None = None) -> bool:
        """Cancel a batch that is not running (or whose runner is gone). True when it was cancelled."""
        states = tuple(from_states)
        sql = (f"UPDATE batches SET state = 'cancelled', finished_at = ?, runner = NULL, cancel_requested = 0 "
               f"WHERE id = ? AND (state IN ({', '.join('?' * len(states))})")
        args: list[object] = [now, batch_id, *states]
        if stale_runner is not None:
            sql += " OR (state = 'running' AND runner = ?)"
            args.append(stale_runner)
        return self._update(sql + ")", args) == 1

    def request_cancel(self, batch_id: str) -> bool:
        """Ask the process running the batch to start no new document. True when the batch is running."""
        return self._update("UPDATE batches SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
                            (batch_id,)) == 1

    def cancel_requested(self, batch_id: str) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT cancel_requested FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return bool(row and row[0])

    def requeue(self, batch_id: str, *, only_sources: list[str] | None, next_due_at: str | None,
                from_states: Iterable[BatchState], stale_runner: str | None = None) -> bool:
        """Queue the batch again (retry), optionally limited to ``only_sources``. True when it was queued."""
        states = tuple(from_states)
        sql = (f"UPDATE batches SET state = 'queued', only_sources = ?, next_due_at = ?, runner = NULL, "
               f"cancel_requested = 0, error = NULL WHERE id = ? AND (state IN ({', '.join('?' * len(states))})")
        args: list[object] = [json.dumps(only_sources, ensure_ascii=False) if only_sources is not None else None,
                              next_due_at, batch_id, *states]
        if stale_runner is not None:
            sql += " OR (state = 'running' AND runner = ?)"
            args.append(stale_runner)
        return self._update(sql + ")", args) == 1

    # --- documents of a batch ------------------------------------------------------------------------------------

    def record_outcome(self, batch_id: str, source: str, *, doc_id: str | None, now: str,
                       failure: Reason | None = None, held: Sequence[Reason] | None = None) -> None:
        """What a run made of a document: stored (neither ``failure`` nor ``held``), failed, or held at intake."""
        reasons = [failure] if failure is not None else list(held) if held is not None else None
        self._update(
            "INSERT INTO batch_documents (batch_id, source, doc_id, error, updated_at, reasons, held) "
            "VALUES (?,?,?,NULL,?,?,?) "
            "ON CONFLICT (batch_id, source) DO UPDATE SET doc_id = excluded.doc_id, error = NULL, "
            "updated_at = excluded.updated_at, reasons = excluded.reasons, held = excluded.held",
            (batch_id, source, doc_id, now, json.dumps(codes_json(reasons), ensure_ascii=False) if reasons is not None
             else None, int(held is not None and failure is None)))

    def outcomes(self, batch_id: str) -> dict[str, DocumentOutcome]:
        """The documents of the batch some run attempted, by source."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, doc_id, error, reasons, held, updated_at FROM batch_documents WHERE batch_id = ?",
                (batch_id,)).fetchall()
        return {str(r[0]): _outcome(str(r[0]), r[1], r[2], r[3], int(r[4] or 0), str(r[5])) for r in rows}

    # --- leases (one nightly run at a time) ----------------------------------------------------------------------

    def acquire_lease(self, name: str, *, holder: str, now: str, stale_holder: str | None = None) -> bool:
        """Take the lease ``name`` if nobody holds it (or its holder is ``stale_holder``, known to be gone)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT holder FROM batch_leases WHERE name = ?", (name,)).fetchone()
                free = row is None or row[0] in (holder, stale_holder)
                if free:
                    self._conn.execute("INSERT OR REPLACE INTO batch_leases (name, holder, acquired_at) "
                                       "VALUES (?,?,?)", (name, holder, now))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return free

    def lease_holder(self, name: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT holder FROM batch_leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def release_lease(self, name: str, *, holder: str) -> None:
        self._update("DELETE FROM batch_leases WHERE name = ? AND holder = ?", (name, holder))


__all__ = ["STATES", "BatchRecord", "BatchRegistry", "BatchState", "BatchSummary", "DocumentOutcome"]
