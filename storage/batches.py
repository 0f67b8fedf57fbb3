"""Batch registry: the scan batches handed to sohoa, their schedule, state and last run, in the catalog database.

Its tables live in the archive's catalog file (``catalog.sqlite``), next to the catalog's own, and are created with
``IF NOT EXISTS`` so archives from before the registry keep working. Documents are not stored here: the catalog
holds what was archived; the registry keeps, per batch, which of its documents a run attempted (source → document
id), why a document failed (failed documents never reach the catalog) and why one was held at intake, as codes
(``schemas.reasons``; rows of older versions hold a Vietnamese ``error`` sentence, read by ``_outcome``). Like the
catalog, it is operational state, not part of the preserved record (``sohoa reindex`` rebuilds the catalog, never
these tables).

The tables live in SQLite (the catalog file, the embedded default) or in PostgreSQL (``SOHOA_DATABASE_URL``): one
class, the same SQL through ``storage.db``. Every state change is one conditional UPDATE, so a cancel and a nightly
run racing for the same batch cannot both win. A running batch carries a run lease (``lease_until``) renewed by
the workers on it; its documents are shared out through the work queue (``storage.work_queue``). Liveness is lease
expiry only, never a process id. Times are ISO 8601 strings with their UTC offset, lease times seconds since the
epoch, all given by the caller (the clock belongs to the flows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from schemas.reasons import Reason, StoredReason, codes_json, from_legacy_joined, from_legacy_text, stored_reasons
from storage.db import Database, SqliteDatabase
from storage.work_queue import WorkQueue

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
    error TEXT,
    lease_until REAL,
    queue_ready INTEGER NOT NULL DEFAULT 0
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
    acquired_at TEXT NOT NULL,
    expires_at REAL
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
    runner: str | None = None  # the worker that opened the running run ("host:token"); others may join it
    lease_until: float | None = None  # running: the run is alive until then (epoch s), renewed by its workers
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
            "started_at, finished_at, next_due_at, runner, summary, error, lease_until")


def _record(row: tuple[object, ...]) -> BatchRecord:
    (id_, folder, file_code, fonds, title, schedule, state, cancel, only, created, started, finished, due, runner,
     summary, error, lease_until) = row
    return BatchRecord(
        id=str(id_), folder=str(folder), file_code=file_code, fonds=fonds, title=title,  # type: ignore[arg-type]
        schedule=str(schedule), state=state, cancel_requested=bool(cancel),  # type: ignore[arg-type]
        only_sources=json.loads(str(only)) if only is not None else None, created_at=str(created),
        started_at=started, finished_at=finished, next_due_at=due, runner=runner,  # type: ignore[arg-type]
        summary=BatchSummary.model_validate_json(str(summary)) if summary is not None else None,
        error=error, lease_until=float(lease_until) if lease_until is not None else None,  # type: ignore[arg-type]
    )


def _ddl(dialect: str) -> list[str]:
    """The registry's tables in the database's spelling: on PostgreSQL 8-byte floats, and a creation-order column
    (SQLite has its ``rowid``)."""
    statements = [s for s in _SCHEMA.split(";") if s.strip()]
    if dialect == "postgres":
        statements = [s.replace(" REAL", " DOUBLE PRECISION") for s in statements]
        statements[0] = statements[0].replace("id TEXT PRIMARY KEY,",
                                              "id TEXT PRIMARY KEY,\n    seq BIGINT GENERATED ALWAYS AS IDENTITY,")
    return statements


_ADDED_COLUMNS = (  # columns later versions added to SQLite registries made before them
    ("batch_documents", "reasons", "TEXT"), ("batch_documents", "held", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "lease_until", "REAL"), ("batches", "queue_ready", "INTEGER NOT NULL DEFAULT 0"),
    ("batch_leases", "expires_at", "REAL"),
)
_SCHEMA_LOCK = 230_001  # PostgreSQL advisory lock: concurrent CREATE TABLE IF NOT EXISTS may otherwise collide


def _in_states(states: tuple[str, ...]) -> str:
    return f"state IN ({', '.join('?' * len(states))})" if states else "0 = 1"


def _takeover(stale_runner: str | None, expired_before: float | None) -> tuple[str, list[object]]:
    """SQL (and arguments) also matching a batch left running by ``stale_runner``, or whose run lease expired."""
    sql = ""
    args: list[object] = []
    if stale_runner is not None:
        sql += " OR (state = 'running' AND runner = ?)"
        args.append(stale_runner)
    if expired_before is not None:
        sql += " OR (state = 'running' AND (lease_until IS NULL OR lease_until < ?))"
        args.append(expired_before)
    return sql, args


class BatchRegistry:
    """The batch tables of the catalog database and its work queue (``queue``), on one connection (thread-safe).

    ``target``: the catalog's SQLite file (the embedded default), or an open ``storage.db.Database`` (PostgreSQL,
    ``SOHOA_DATABASE_URL``), closed with the registry; ``path`` then names the archive's catalog for messages."""

    def __init__(self, target: Path | Database, *, path: Path | None = None) -> None:
        self.db: Database = SqliteDatabase(target) if isinstance(target, Path) else target
        self.path = target if isinstance(target, Path) else (path or Path("catalog.sqlite"))
        with self.db.transaction():
            if self.db.dialect == "postgres":
                self.db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            for statement in _ddl(self.db.dialect):
                self.db.execute(statement)
            if self.db.dialect == "sqlite":
                self._add_columns()
            self.queue = WorkQueue(self.db)

    def _add_columns(self) -> None:
        """SQLite registries made by earlier versions get the columns added since (inside the schema's write
        transaction, so two processes cannot both add one)."""
        for table, column, kind in _ADDED_COLUMNS:
            have = {str(r[1]) for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> BatchRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _update(self, sql: str, args: Iterable[object]) -> int:
        return int(self.db.execute(sql, tuple(args)).rowcount)

    # --- batches -------------------------------------------------------------------------------------------------

    def add(self, record: BatchRecord) -> bool:
        """Insert a new batch; False when its id is taken (the caller draws another)."""
        return self._update(
            f"INSERT INTO batches ({_COLUMNS}) VALUES ({', '.join('?' * 17)}) ON CONFLICT (id) DO NOTHING",
            (record.id, record.folder, record.file_code, record.fonds, record.title, record.schedule,
             record.state, int(record.cancel_requested),
             json.dumps(record.only_sources, ensure_ascii=False) if record.only_sources is not None
             else None, record.created_at, record.started_at, record.finished_at, record.next_due_at,
             record.runner, record.summary.model_dump_json() if record.summary else None, record.error,
             record.lease_until)) == 1

    def get(self, batch_id: str) -> BatchRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return None if row is None else _record(row)

    def batches(self, *, states: Iterable[BatchState] | None = None) -> list[BatchRecord]:
        """Batches in creation order (optionally only those in ``states``)."""
        sql = f"SELECT {_COLUMNS} FROM batches"
        args: tuple[str, ...] = ()
        if states is not None:
            args = tuple(states)
            sql += f" WHERE {_in_states(args)}"
        order = "rowid" if self.db.dialect == "sqlite" else "seq"  # creation order
        rows = self.db.execute(f"{sql} ORDER BY {order}", args).fetchall()
        return [_record(row) for row in rows]

    def claim(self, batch_id: str, *, runner: str, now: str, from_states: Iterable[BatchState],
              stale_runner: str | None = None, expired_before: float | None = None,
              lease_until: float | None = None) -> bool:
        """Open a run of the batch for ``runner`` (state ``running``, run lease until ``lease_until``) if it is in
        one of ``from_states``, or running for ``stale_runner``, or running under a lease that ended before
        ``expired_before`` (its workers are gone: taken over, its queue kept). True when this caller won it.
        A fresh run starts with an empty queue, not ready until its opener fills it (``queue.enqueue``)."""
        states = tuple(from_states)
        more, extra = _takeover(stale_runner, expired_before)
        with self.db.transaction():
            row = self.db.execute("SELECT state FROM batches WHERE id = ?", (batch_id,)).fetchone()
            won = self._update(
                "UPDATE batches SET state = 'running', runner = ?, started_at = ?, finished_at = NULL, error = NULL, "
                "lease_until = ?, queue_ready = CASE WHEN state = 'running' THEN queue_ready ELSE 0 END "
                f"WHERE id = ? AND ({_in_states(states)}{more})",
                [runner, now, lease_until, batch_id, *states, *extra]) == 1
            if won and row is not None and row[0] != "running":
                self.queue.clear(batch_id)
        return won

    def finish(self, batch_id: str, *, runner: str, state: BatchState, summary: BatchSummary, now: str,
               next_due_at: str | None, error: str | None = None, only_sources: list[str] | None = None) -> bool:
        """End ``runner``'s run of the batch: its new state, summary, next due time and the scope of its next
        run (``only_sources``; None: every document). A cancel request is used up. The run's queue stays as a
        record of who did what until the next run opens (a batch that is not running hands out nothing)."""
        return self._update(
            "UPDATE batches SET state = ?, summary = ?, finished_at = ?, next_due_at = ?, error = ?, "
            "runner = NULL, lease_until = NULL, queue_ready = 0, only_sources = ?, cancel_requested = 0 "
            "WHERE id = ? AND state = 'running' AND runner = ?",
            (state, summary.model_dump_json(), now, next_due_at, error,
             json.dumps(only_sources, ensure_ascii=False) if only_sources is not None else None, batch_id,
             runner)) == 1

    def cancel(self, batch_id: str, *, now: str, from_states: Iterable[BatchState],
               stale_runner: str | None = None, expired_before: float | None = None) -> bool:
        """Cancel a batch that is not running (or whose run is gone: ``stale_runner``, ``expired_before`` as for
        ``claim``). True when it was cancelled."""
        states = tuple(from_states)
        more, extra = _takeover(stale_runner, expired_before)
        return self._update(
            "UPDATE batches SET state = 'cancelled', finished_at = ?, runner = NULL, lease_until = NULL, "
            f"queue_ready = 0, cancel_requested = 0 WHERE id = ? AND ({_in_states(states)}{more})",
            [now, batch_id, *states, *extra]) == 1

    def request_cancel(self, batch_id: str) -> bool:
        """Ask the workers running the batch to start no new document. True when the batch is running."""
        return self._update("UPDATE batches SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
                            (batch_id,)) == 1

    def cancel_requested(self, batch_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return bool(row and row[0])

    def requeue(self, batch_id: str, *, only_sources: list[str] | None, next_due_at: str | None,
                from_states: Iterable[BatchState], stale_runner: str | None = None,
                expired_before: float | None = None) -> bool:
        """Queue the batch again (retry), optionally limited to ``only_sources``. True when it was queued."""
        states = tuple(from_states)
        more, extra = _takeover(stale_runner, expired_before)
        return self._update(
            "UPDATE batches SET state = 'queued', only_sources = ?, next_due_at = ?, runner = NULL, "
            "lease_until = NULL, queue_ready = 0, cancel_requested = 0, error = NULL "
            f"WHERE id = ? AND ({_in_states(states)}{more})",
            [json.dumps(only_sources, ensure_ascii=False) if only_sources is not None else None,
             next_due_at, batch_id, *states, *extra]) == 1

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
        rows = self.db.execute(
            "SELECT source, doc_id, error, reasons, held, updated_at FROM batch_documents WHERE batch_id = ?",
            (batch_id,)).fetchall()
        return {str(r[0]): _outcome(str(r[0]), r[1], r[2], r[3], int(r[4] or 0), str(r[5])) for r in rows}

    # --- named leases ----------------------------------------------------------------------------------------------

    def acquire_lease(self, name: str, *, holder: str, now: str, stale_holder: str | None = None,
                      expires_at: float | None = None, now_s: float | None = None) -> bool:
        """Take (or renew) the lease ``name`` until ``expires_at`` if nobody holds it, ``holder`` does, its holder
        is ``stale_holder`` (known to be gone) or its expiry is before ``now_s``. One statement: two takers never
        both win."""
        return self._update(
            "INSERT INTO batch_leases (name, holder, acquired_at, expires_at) VALUES (?,?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, "
            "expires_at = excluded.expires_at WHERE batch_leases.holder = ? OR batch_leases.holder = ? "
            "OR batch_leases.expires_at < ?",
            (name, holder, now, expires_at, holder, stale_holder, now_s)) == 1

    def lease_holder(self, name: str, *, now_s: float | None = None) -> str | None:
        """Who holds the lease (None: nobody, or its expiry is before ``now_s``)."""
        row = self.db.execute("SELECT holder, expires_at FROM batch_leases WHERE name = ?", (name,)).fetchone()
        if row is None or (now_s is not None and row[1] is not None and float(row[1]) < now_s):
            return None
        return str(row[0])

    def release_lease(self, name: str, *, holder: str) -> None:
        self._update("DELETE FROM batch_leases WHERE name = ? AND holder = ?", (name, holder))

__all__ = ["STATES", "BatchRecord", "BatchRegistry", "BatchState", "BatchSummary", "DocumentOutcome"]
