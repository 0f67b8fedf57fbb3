"""The record of ``sohoa digitise`` runs (batches run by hand, outside the batch registry): one JSON line per run
in ``<archive>/run-log.jsonl`` with its pages, duration and rate, and which document each entry became (source,
id, status), so a reader's view can leave out a run that spent time on a document above their clearance
(``flows.status``). Registry batches keep their runs in the registry (``storage.batches``). Appended after the
run; a line that cannot be read is skipped by readers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from flows.jsonl_log import append_entry, read_entries
from flows.progress import Progress
from schemas.document import BatchReport

RUN_LOG = "run-log.jsonl"


class RunDocument(BaseModel):
    source: str
    id: str | None = None
    status: Literal["done", "needs_review", "failed", "quarantined"]


class RunEntry(BaseModel):
    """One ``sohoa digitise`` run as the log keeps it."""

    finished_at: str  # ISO 8601, UTC
    started_at: str | None = None  # ISO 8601, UTC, milliseconds: when the command's process started
    batch: str  # the batch folder's name
    pages: int = 0
    elapsed_s: float = 0.0
    pages_per_minute: float = 0.0
    documents: list[RunDocument] = Field(default_factory=list)
    # start-up milestones, seconds after ``started_at`` (``flows.progress.Progress.mark``): ``ocr_started`` is the
    # first page entering OCR; also ``page_started``, ``page_read``, ``prefect_ready``, ``flow_started``
    milestones: dict[str, float] = Field(default_factory=dict)
    milestones_cpu_s: dict[str, float] = Field(default_factory=dict)  # this process's CPU seconds at each (children
    # not counted): wall figures swing with the machine's load, these much less


def record_run(archive: Path, report: BatchReport, *, started_at: float | None = None,
               progress: Progress | None = None) -> RunEntry:
    """Append a finished ``sohoa digitise`` run to the archive's run log; ``started_at`` (epoch seconds) and the
    run's milestones (``progress``) are kept as the start time and seconds after it."""
    entry = RunEntry(finished_at=datetime.now(UTC).isoformat(timespec="seconds"), batch=Path(report.batch).name,
                     pages=report.pages_processed, elapsed_s=report.elapsed_s,
                     pages_per_minute=report.pages_per_minute,
                     documents=[RunDocument(source=d.source, id=d.id, status=d.status) for d in report.documents])
    if started_at is not None:
        entry.started_at = datetime.fromtimestamp(started_at, UTC).isoformat(timespec="milliseconds")
    if started_at is not None and progress is not None:
        order = sorted(progress.milestones, key=progress.milestones.__getitem__)
        entry.milestones = {name: round(progress.milestones[name] - started_at, 3) for name in order}
        entry.milestones_cpu_s = {name: round(progress.milestones_cpu[name], 3) for name in order}
    append_entry(archive / RUN_LOG, entry)
    return entry


def logged_runs(archive: Path) -> list[RunEntry]:
    """Every run in the archive's log, in the order recorded."""
    return read_entries(archive / RUN_LOG, RunEntry)
