"""The shared work queue of batch runs: the documents of a running batch, claimed one by one by workers.

Any number of workers (processes, on any number of hosts) share the queue of a running batch through the registry's
database (``storage.db``): a worker **claims** the next document in batch order, which gives it a lease (its worker
id and an expiry time); it keeps the lease alive with ``renew`` (a heartbeat) while it digitises the document and
ends it with ``complete``. A document whose lease has expired (its worker died, or lost its host) may be claimed
again by anyone; a finished document is never handed out again.

- PostgreSQL: the claim picks its row with ``SELECT … FOR UPDATE SKIP LOCKED`` inside a short transaction, so
  concurrent workers never wait for each other nor pick the same row;
- SQLite: the same transaction is ``BEGIN IMMEDIATE`` (one writer at a time on the file): the row picked is
  updated before anyone else may look.

No process ids anywhere: liveness is the lease's expiry only. Times are seconds since the epoch (floats) given by
the caller, so a test expires a lease by advancing its clock; hosts sharing a queue need synchronised clocks (NTP),
and a lease must be much longer than their skew.

Rows (``work_items``): ``state`` pending → claimed → finished; ``attempts`` counts claims (above 1: a worker died
on it, the new holder re-checks the archive first); ``pages`` and ``skipped`` feed the batch's summary, whoever
finishes the batch. The queue of a batch is filled once by the worker that opened its run (``enqueue``, which
also marks it ready: ``batches.queue_ready``); it stays, as a record of who did what, until the batch's next run
opens (a batch that is not running hands out nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS work_items (
    batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    worker TEXT,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, source)
);
CREATE INDEX IF NOT EXISTS work_items_by_state ON work_items(batch_id, state, position)
"""

# claimable: never claimed, or claimed under a lease that ended before ``now``
_CLAIMABLE = "(state = 'pending' OR (state = 'claimed' AND lease_until < ?))"


@dataclass(frozen=True)
class Claim:
    """A document handed to a worker: its source, and how many times it has been claimed (1: the first time)."""

    batch_id: str
    source: str
    attempts: int


@dataclass(frozen=True)
class QueueState:
    """What is left of a batch's queue, seen by one worker at ``now``."""

    ready: bool  # the run's opener has filled the queue
    claimable: int  # pending, or claimed under an expired lease
    held_by_others: int  # claimed by other workers under a live lease
    finished: int

    @property
    def settled(self) -> bool:
        """Nothing anyone could still do: this worker may finish the batch (when it stopped claiming)."""
        return self.ready and self.held_by_others == 0


class WorkQueue:
    """The ``work_items`` table of the registry's database (shares the registry's connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement.replace(" REAL", " DOUBLE PRECISION") if db.dialect == "postgres"
                                else statement)

    def enqueue(self, batch_id: str, sources: Sequence[str], *, skipped: Sequence[str] = ()) -> int:
        """Fill the batch's queue (documents to digitise, in batch order; ``skipped``: already archived, finished
        at once) and mark it ready. Documents already queued keep their state (a run taken over is refilled).
        Returns the number of rows added."""
        rows = [(batch_id, s, i, "pending", 0) for i, s in enumerate(sources)]
        rows += [(batch_id, s, len(sources) + i, "finished", 1) for i, s in enumerate(skipped)]
        added = 0
        with self.db.transaction():
            for row in rows:
                added += self.db.execute(
                    "INSERT INTO work_items (batch_id, source, position, state, skipped) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (batch_id, source) DO NOTHING", row).rowcount
            self.db.execute("UPDATE batches SET queue_ready = 1 WHERE id = ?", (batch_id,))
        return added

    def claim(self, batch_id: str, *, worker: str, now_s: float, until_s: float) -> Claim | None:
        """The next claimable document of the batch, leased to ``worker`` until ``until_s``; None when there is
        none, or the batch is not running, not ready, or asked to cancel (a cancelled batch hands out nothing)."""
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        for _ in range(3):  # a row another worker took between our snapshot and our lock: look again
            with self.db.transaction():
                batch = self.db.execute("SELECT state, cancel_requested, queue_ready FROM batches WHERE id = ?",
                                        (batch_id,)).fetchone()
                if batch is None or batch[0] != "running" or batch[1] or not batch[2]:
                    return None
                row = self.db.execute(
                    f"SELECT source, attempts FROM work_items WHERE batch_id = ? AND {_CLAIMABLE} "
                    f"ORDER BY position LIMIT 1{lock}", (batch_id, now_s)).fetchone()
                if row is not None:
                    taken = self.db.execute(
                        f"UPDATE work_items SET state = 'claimed', worker = ?, lease_until = ?, "
                        f"attempts = attempts + 1 WHERE batch_id = ? AND source = ? AND {_CLAIMABLE}",
                        (worker, until_s, batch_id, row[0], now_s)).rowcount
                    if taken == 1:
                        return Claim(batch_id=batch_id, source=str(row[0]), attempts=int(row[1]) + 1)
            if row is None:
                return None
        return None

    def renew(self, batch_id: str, *, worker: str, until_s: float) -> int:
        """Heartbeat: extend ``worker``'s leases on the batch's documents, and the batch's run lease. Returns the
        number of documents still held (a lease lost to another worker is not renewed)."""
        with self.db.transaction():
            held = self.db.execute(
                "UPDATE work_items SET lease_until = ? WHERE batch_id = ? AND worker = ? AND state = 'claimed'",
                (until_s, batch_id, worker)).rowcount
            self.db.execute("UPDATE batches SET lease_until = ? WHERE id = ? AND state = 'running' "
                            "AND (lease_until IS NULL OR lease_until < ?)", (until_s, batch_id, until_s))
        return int(held)

    def complete(self, batch_id: str, source: str, *, worker: str, pages: int = 0, skipped: bool = False) -> bool:
        """``worker`` is done with the document. False when it no longer held it (its lease expired and another
        worker claimed it): the document is then the other worker's to finish."""
        return self.db.execute(
            "UPDATE work_items SET state = 'finished', lease_until = NULL, pages = ?, skipped = ? "
            "WHERE batch_id = ? AND source = ? AND state = 'claimed' AND worker = ?",
            (pages, int(skipped), batch_id, source, worker)).rowcount == 1

    def state(self, batch_id: str, *, worker: str, now_s: float) -> QueueState:
        row = self.db.execute(
            "SELECT COALESCE(MAX(queue_ready), 0) FROM batches WHERE id = ?", (batch_id,)).fetchone()
        counts = self.db.execute(
            f"SELECT SUM(CASE WHEN {_CLAIMABLE} THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state = 'claimed' AND lease_until >= ? AND worker <> ? THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state = 'finished' THEN 1 ELSE 0 END) FROM work_items WHERE batch_id = ?",
            (now_s, now_s, worker, batch_id)).fetchone()
        return QueueState(ready=bool(row and row[0]), claimable=int(counts[0] or 0),
                          held_by_others=int(counts[1] or 0), finished=int(counts[2] or 0))

    def leases_of_others(self, batch_id: str, *, worker: str, now_s: float) -> dict[str, float]:
        """The documents other workers hold under a live lease, with each lease's expiry (a renewal moves it)."""
        rows = self.db.execute(
            "SELECT source, lease_until FROM work_items WHERE batch_id = ? AND state = 'claimed' "
            "AND lease_until >= ? AND worker <> ?", (batch_id, now_s, worker)).fetchall()
        return {str(r[0]): float(r[1]) for r in rows}

    def unfinished(self, batch_id: str) -> list[str]:
        """The documents of the batch's queue not finished (pending or claimed), in batch order."""
        rows = self.db.execute("SELECT source FROM work_items WHERE batch_id = ? AND state <> 'finished' "
                               "ORDER BY position", (batch_id,)).fetchall()
        return [str(r[0]) for r in rows]

    def totals(self, batch_id: str) -> tuple[int, int]:
        """(pages digitised, documents skipped as already archived) over the batch's finished documents."""
        row = self.db.execute("SELECT COALESCE(SUM(pages), 0), COALESCE(SUM(skipped), 0) FROM work_items "
                              "WHERE batch_id = ? AND state = 'finished'", (batch_id,)).fetchone()
        return int(row[0]), int(row[1])

    def finished_by(self, batch_id: str) -> dict[str, str | None]:
        """Who finished each finished document (source → worker; None: skipped at enqueue)."""
        rows = self.db.execute("SELECT source, worker FROM work_items WHERE batch_id = ? AND state = 'finished'",
                               (batch_id,)).fetchall()
        return {str(r[0]): (str(r[1]) if r[1] is not None else None) for r in rows}

    def attempts(self, batch_id: str) -> dict[str, int]:
        """How many times each document of the batch's queue was claimed (above 1: taken over from a dead worker)."""
        rows = self.db.execute("SELECT source, attempts FROM work_items WHERE batch_id = ?", (batch_id,)).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def clear(self, batch_id: str) -> None:
        self.db.execute("DELETE FROM work_items WHERE batch_id = ?", (batch_id,))


__all__ = ["SCHEMA", "Claim", "QueueState", "WorkQueue"]
