"""Running a claimed batch: plan its documents (those not archived yet), digitise them as Prefect tasks while the
batch may go on (window open, no cancel request), and record the outcome in the registry. Used inside the flows of
``flows.batches``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed

from flows.batches.report import batch_markdown
from flows.batches.schedule import Clock, iso, next_fire, stale_runner, this_runner, window_open
from flows.batches.status import StopReason, document_statuses, require_batch, summarise
from flows.digitise import compact_search_index, document_tasks, task_result
from flows.inbox import batch_documents, is_inbox
from flows.wiring import Services, services_for
from pipeline.load import document_id
from schemas.document import DocumentResult, DocumentSource
from schemas.errors import ConfigError
from schemas.reasons import ReasonCode, reason
from schemas.settings import NightWindow, Settings
from storage.batches import BatchRecord, BatchRegistry, BatchState


@dataclass
class BatchPlan:
    todo: list[DocumentSource]  # documents to digitise, in batch order
    skipped: list[DocumentResult] = field(default_factory=list)  # already in the archive


def plan_batch(record: BatchRecord, services: Services) -> BatchPlan:
    """The documents of the batch (or of its retry scope) not yet in the archive."""
    folder = Path(record.folder)
    if not is_inbox(record.folder) and not folder.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                          fix="khôi phục thư mục lô về chỗ cũ rồi `sohoa batch retry`")
    docs = batch_documents(record.folder, services.settings)  # a folder, or an S3 inbox prefix (``flows.inbox``)
    if record.only_sources is not None:
        wanted = set(record.only_sources)
        docs = [d for d in docs if d.source in wanted]
    plan = BatchPlan(todo=[])
    for doc in docs:
        if doc.inbox is not None and not doc.files:  # an S3 inbox document: its task downloads, hashes, skips it
            plan.todo.append(doc)
            continue
        try:
            doc_id = document_id(services.identity_of(doc))
        except Exception:  # unreadable, not a regular file, a limit: the document task reports why
            plan.todo.append(doc)
            continue
        entry = services.catalog.get(doc_id)
        if entry is None:
            plan.todo.append(doc)
        else:
            plan.skipped.append(DocumentResult(source=doc.source, id=doc_id, status=entry.status,  # type: ignore[arg-type]
                                               pages=entry.pages, review_reason_codes=entry.review_reasons,
                                               skipped=True))
    return plan


@dataclass
class BatchRun:
    record: BatchRecord
    registry: BatchRegistry
    settings: Settings
    services: Services
    clock: Clock
    runner: str
    window: NightWindow | None  # None: no window (a `now` run)
    started: float = field(default_factory=time.monotonic)  # when this process claimed the batch
    results: list[DocumentResult] = field(default_factory=list)
    stopped: StopReason | None = None
    not_started: list[str] = field(default_factory=list)

    def now(self) -> str:
        return iso(self.clock(), self.settings.timezone)

    def stop_reason(self) -> StopReason | None:
        """Checked before each document starts: the window has closed, or a cancel request."""
        if self.window is not None and not window_open(self.window, self.clock(), self.settings.timezone):
            return "window"
        if self.registry.cancel_requested(self.record.id):
            return "cancel"
        return None

    def note(self, result: DocumentResult) -> None:
        self.results.append(result)
        failure = (result.failure_code or reason(ReasonCode.UNKNOWN_FAILURE)) if result.status == "failed" else None
        # held at intake: recorded with its reasons, neither done nor failed
        held = result.review_reason_codes if result.status == "quarantined" else None
        self.registry.record_outcome(self.record.id, result.source, doc_id=result.id, now=self.now(),
                                     failure=failure, held=held)


def execute(run: BatchRun, plan: BatchPlan) -> None:
    """Digitise the plan's documents as Prefect tasks (on threads or Dask: ``document_tasks``), at most
    ``workers + 1`` at a time, starting each one only while the batch may go on (window open, no cancel request).
    Must run inside a flow."""
    file_code = run.record.file_code
    for result in plan.skipped:
        run.note(result)
    in_flight: dict[PrefectFuture[DocumentResult], DocumentSource] = {}

    def reap_one() -> None:
        future = next(as_completed(list(in_flight)))
        run.note(task_result(future, in_flight.pop(future), run.settings))

    limit = run.settings.workers + 1
    with document_tasks(run.settings) as submit:
        for index, doc in enumerate(plan.todo):
            while len(in_flight) >= limit:
                reap_one()
            run.stopped = run.stop_reason()
            if run.stopped is not None:
                run.not_started = [d.source for d in plan.todo[index:]]
                break
            in_flight[submit(doc, run.record.name, file_code)] = doc
        while in_flight:
            reap_one()


def finish_run(run: BatchRun, *, error: str | None = None) -> BatchRecord:
    """Record the run's outcome: the batch's new state, summary and next due time."""
    _CLAIMED_AT.pop(run.record.id, None)
    elapsed_s = time.monotonic() - run.started  # pages OCR'd ahead while Prefect started count too
    catalog = run.services.catalog
    statuses = document_statuses(run.record, run.registry, catalog)
    pages = sum(r.pages for r in run.results if not r.skipped and r.status != "failed")
    compact_search_index(run.services, sum(1 for r in run.results if not r.skipped and r.status != "failed"))
    summary = summarise(statuses, skipped=sum(r.skipped for r in run.results), pages=pages, elapsed_s=elapsed_s,
                        stopped=run.stopped)
    state: BatchState
    if error is not None:
        state = "failed"
    elif run.stopped == "cancel":
        state = "cancelled"
    elif run.stopped == "window" or summary.pending:
        state = "partial"
    elif summary.failed:
        state = "failed"
    else:
        state = "done"
    next_due = None
    if state in ("done", "failed") and run.record.schedule not in ("now", "tonight"):
        next_due = iso(next_fire(run.record.schedule, run.clock().astimezone(ZoneInfo(run.settings.timezone))),
                       run.settings.timezone)
    rest = None  # a retry's scope that did not start stays the scope of the next run
    if state == "partial" and run.record.only_sources is not None:
        rest = [s for s in run.not_started if s in set(run.record.only_sources)] or None
    if not run.registry.finish(run.record.id, runner=run.runner, state=state, summary=summary, now=run.now(),
                               next_due_at=next_due, error=error, only_sources=rest):
        raise ConfigError(f"Lô {run.record.id} không còn do tiến trình này chạy", fix="xem `sohoa batch show`")
    record = require_batch(run.registry, run.record.id)
    if FlowRunContext.get() is not None:  # published with the flow run (outside one, nothing ran)
        create_markdown_artifact(key=record.id, markdown=batch_markdown(record, statuses),
                                 description=f"sohoa: lô {record.id}")
    return record


def run_claimed(run: BatchRun) -> BatchRecord:
    """Plan, digitise and record a batch this process has claimed; a broken run marks the batch failed."""
    try:
        plan = plan_batch(run.record, run.services)
        execute(run, plan)
    except KeyboardInterrupt:
        run.stopped = "cancel"
        finish_run(run)
        raise
    except Exception as exc:
        return finish_run(run, error=str(exc))
    return finish_run(run)


def claimed_run(settings: Settings, registry: BatchRegistry, batch_id: str, clock: Clock,
                 window: NightWindow | None) -> BatchRun | None:
    """Claim the batch for this process (or find it already claimed by it); None when someone else has it."""
    me = this_runner()
    record = require_batch(registry, batch_id)
    if not (record.state == "running" and record.runner == me):
        if not registry.claim(record.id, runner=me, now=iso(clock(), settings.timezone),
                              from_states=("queued", "partial", "done", "failed"), stale_runner=stale_runner(record)):
            return None
        record = require_batch(registry, batch_id)
        _CLAIMED_AT[record.id] = time.monotonic()
    return BatchRun(record=record, registry=registry, settings=settings, services=services_for(settings), clock=clock,
                runner=me, window=window, started=_CLAIMED_AT.get(record.id, time.monotonic()))


_CLAIMED_AT: dict[str, float] = {}  # batch id → when this process claimed it (a run's elapsed time starts there)
