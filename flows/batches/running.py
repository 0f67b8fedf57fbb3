"""Running a batch: open its run (or join the run under way), share its documents out through the work queue
(``storage.work_queue``), digitise the documents this worker claims as Prefect tasks while the batch may go on
(window open, no cancel request), and record the outcome in the registry. Used inside the flows of
``flows.batches``.

Any number of workers (``sohoa batch add --when now`` processes, nightly runs, on any number of hosts sharing the
registry's database and the scan folders) work on one batch: the first opens the run and fills its queue with the
documents not archived yet; every worker claims documents one by one under a lease its heartbeat renews, so each
document is done by one worker; a worker that dies loses its leases when they run out and another takes its
documents over. The last worker on the batch (nobody else holding a live claim) records the batch's outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed

from flows.batches.report import batch_markdown
from flows.batches.schedule import Clock, iso, next_fire, this_runner, window_open
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
from storage.work_queue import Claim

log = logging.getLogger(__name__)


@dataclass
class BatchPlan:
    todo: list[DocumentSource]  # documents to digitise, in batch order
    skipped: list[DocumentResult] = field(default_factory=list)  # already in the archive


def archived(doc: DocumentSource, services: Services) -> DocumentResult | None:
    """The document as already archived (a skipped result), or None when it still has to be digitised (also when
    it cannot be read: the document task reports why; an S3 inbox document not downloaded yet: its task downloads,
    hashes and skips it)."""
    if doc.inbox is not None and not doc.files:
        return None
    try:
        doc_id = document_id(services.identity_of(doc))
    except Exception:
        return None
    entry = services.catalog.get(doc_id)
    if entry is None:
        return None
    return DocumentResult(source=doc.source, id=doc_id, status=entry.status,  # type: ignore[arg-type]
                          pages=entry.pages, review_reason_codes=entry.review_reasons, skipped=True)


def _batch_documents(record: BatchRecord, services: Services) -> list[DocumentSource]:
    folder = Path(record.folder)
    if not is_inbox(record.folder) and not folder.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                          fix="khôi phục thư mục lô về chỗ cũ rồi `sohoa batch retry`")
    docs = batch_documents(record.folder, services.settings)  # a folder, or an S3 inbox prefix (``flows.inbox``)
    if record.only_sources is not None:
        wanted = set(record.only_sources)
        docs = [d for d in docs if d.source in wanted]
    return docs


def plan_batch(record: BatchRecord, services: Services) -> BatchPlan:
    """The documents of the batch (or of its retry scope) not yet in the archive."""
    plan = BatchPlan(todo=[])
    for doc in _batch_documents(record, services):
        done = archived(doc, services)
        if done is None:
            plan.todo.append(doc)
        else:
            plan.skipped.append(done)
    return plan


def remaining_plan(run: BatchRun) -> BatchPlan:
    """What is left in the queue of a run this worker joined (another worker planned it)."""
    left = set(run.registry.queue.unfinished(run.record.id))
    return BatchPlan(todo=[d for d in _batch_documents(run.record, run.services) if d.source in left])


@dataclass
class BatchRun:
    record: BatchRecord  # as this worker found it when it opened or joined the run
    registry: BatchRegistry
    settings: Settings
    services: Services
    clock: Clock
    runner: str  # this worker (``this_runner``); ``record.runner`` is the worker that opened the run
    window: NightWindow | None  # None: no window (a `now` run)
    opener: bool = True  # this worker opened the run (plans and fills the queue); False: it joined the run
    started: float = field(default_factory=time.monotonic)  # when this process claimed the batch
    results: list[DocumentResult] = field(default_factory=list)
    stopped: StopReason | None = None
    not_started: list[str] = field(default_factory=list)

    def now(self) -> str:
        return iso(self.clock(), self.settings.timezone)

    def now_s(self) -> float:
        return self.clock().timestamp()

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

    def claim(self) -> Claim | None:
        now_s = self.now_s()
        return self.registry.queue.claim(self.record.id, worker=self.runner, now_s=now_s,
                                         until_s=now_s + self.settings.lease_s)

    def settle(self, claim: Claim, result: DocumentResult) -> None:
        """Record what became of a claimed document, then hand it back to the queue as finished."""
        self.note(result)
        pages = result.pages if not result.skipped and result.status != "failed" else 0
        if not self.registry.queue.complete(self.record.id, claim.source, worker=self.runner, pages=pages,
                                            skipped=result.skipped):
            log.warning("Lô %s: %s đã được tiến trình khác nhận lại (hết hạn thuê)", self.record.id, claim.source)


def open_queue(run: BatchRun, plan: BatchPlan) -> None:
    """The opener of a run fills its queue: the documents to digitise; the archived ones are noted, finished."""
    for result in plan.skipped:
        run.note(result)
    run.registry.queue.enqueue(run.record.id, [d.source for d in plan.todo],
                               skipped=[r.source for r in plan.skipped])


@contextmanager
def heartbeat(interval_s: float, beat: Callable[[], object], name: str) -> Iterator[None]:
    """``beat()`` every ``interval_s`` seconds (on a thread) while the block runs: the renewal of leases."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                beat()
            except Exception:  # a lost connection: the next beat tries again, the lease covers a few misses
                log.exception("Không gia hạn được %s", name)

    thread = threading.Thread(target=loop, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _renew(run: BatchRun) -> None:
    run.registry.queue.renew(run.record.id, worker=run.runner, until_s=run.now_s() + run.settings.lease_s)


def _claimed_document(run: BatchRun, claim: Claim, docs: dict[str, DocumentSource]) -> DocumentSource | None:
    """The document to digitise for a claim; None when it was settled at once: gone from the folder (failed),
    or a claim taken over from a dead worker whose document reached the archive before it died (done in this run:
    its pages count in the run's summary, it is not a document skipped as archived before the run)."""
    doc = docs.get(claim.source)
    if doc is None:
        run.settle(claim, DocumentResult(source=claim.source, id=None, status="failed", pages=0, failure_code=reason(
            ReasonCode.DOCUMENT_REJECTED, detail=f"{claim.source}: không còn trong thư mục lô")))
        return None
    done = archived(doc, run.services) if claim.attempts > 1 else None
    if done is not None:  # it was not archived when the queue was filled: the dead worker digitised it in this
        run.settle(claim, done.model_copy(update={"skipped": False}))  # run (its pages count), then died
        return None
    return doc


def execute(run: BatchRun) -> None:
    """Digitise documents claimed from the batch's queue as Prefect tasks (on threads or Dask:
    ``document_tasks``), at most ``workers + 1`` at a time, claiming each one only while the batch may go on
    (window open, no cancel request). Other workers claim from the same queue. Must run inside a flow."""
    file_code = run.record.file_code
    docs = {d.source: d for d in _batch_documents(run.record, run.services)}
    in_flight: dict[PrefectFuture[DocumentResult], tuple[DocumentSource, Claim]] = {}

    def reap_one() -> None:
        future = next(as_completed(list(in_flight)))
        doc, claim = in_flight.pop(future)
        run.settle(claim, task_result(future, doc, run.settings))

    limit = run.settings.workers + 1
    with document_tasks(run.settings) as submit:
        while True:
            while len(in_flight) >= limit:
                reap_one()
            run.stopped = run.stop_reason()
            if run.stopped is not None:
                break
            claim = run.claim()
            if claim is None:
                if in_flight:
                    reap_one()  # what is in flight may end the window, or a lease may run out meanwhile
                elif not await_held(run):
                    break
                continue
            doc = _claimed_document(run, claim, docs)
            if doc is not None:
                in_flight[submit(doc, run.record.name, file_code)] = (doc, claim)
        while in_flight:
            reap_one()


def await_held(run: BatchRun, sleep: Callable[[float], object] = time.sleep) -> bool:
    """Nothing left to claim, nothing in flight, but other workers hold documents: watch their leases. True when
    one may be claimed (a lease ran out: its worker is gone, this one takes the document over); False when no
    document is held any more, when every holder has renewed its lease since (it is alive, and the last one
    records the batch), or when the batch must stop. Waits at most a lease, about a heartbeat for live holders."""
    queue, batch_id = run.registry.queue, run.record.id
    unproven = queue.leases_of_others(batch_id, worker=run.runner, now_s=run.now_s())  # not yet seen renewed
    poll_s = min(1.0, run.settings.heartbeat_interval_s / 4)
    while unproven:
        sleep(poll_s)
        if run.stop_reason() is not None:
            return False
        record = run.registry.get(batch_id)
        if record is None or record.state != "running":
            return False
        held = queue.leases_of_others(batch_id, worker=run.runner, now_s=run.now_s())
        gone = set(unproven) - set(held)  # finished, or its lease ran out (then it is still unfinished)
        if gone and gone & set(queue.unfinished(batch_id)):
            return True
        unproven = {source: until for source, until in unproven.items()
                    if source in held and held[source] <= until}
    return False


def _final_state(run: BatchRun, pending: int, failed: int, error: str | None) -> BatchState:
    if error is not None:
        return "failed"
    if run.stopped == "cancel":
        return "cancelled"
    if run.stopped == "window" or pending:
        return "partial"
    return "failed" if failed else "done"


def finish_run(run: BatchRun, *, error: str | None = None) -> BatchRecord:
    """Record the run's outcome (the batch's new state, summary and next due time) when this worker is the last
    on the batch; while another worker holds documents under a live lease, that one will (the batch is returned
    as it is). A broken run (``error``) ends the batch at once."""
    queue = run.registry.queue
    if error is None and not queue.state(run.record.id, worker=run.runner, now_s=run.now_s()).settled:
        _CLAIMED_AT.pop(run.record.id, None)
        return require_batch(run.registry, run.record.id)
    elapsed_s = time.monotonic() - _CLAIMED_AT.pop(run.record.id, run.started)  # prefetching counts too
    catalog = run.services.catalog
    statuses = document_statuses(run.record, run.registry, catalog)
    compact_search_index(run.services, sum(1 for r in run.results if not r.skipped and r.status != "failed"))
    pages, skipped = queue.totals(run.record.id)
    summary = summarise(statuses, skipped=skipped, pages=pages, elapsed_s=elapsed_s, stopped=run.stopped)
    state = _final_state(run, summary.pending, summary.failed, error)
    next_due = None
    if state in ("done", "failed") and run.record.schedule not in ("now", "tonight"):
        next_due = iso(next_fire(run.record.schedule, run.clock().astimezone(ZoneInfo(run.settings.timezone))),
                       run.settings.timezone)
    run.not_started = queue.unfinished(run.record.id)
    rest = None  # a retry's scope that did not start stays the scope of the next run
    if state == "partial" and run.record.only_sources is not None:
        rest = [s for s in run.not_started if s in set(run.record.only_sources)] or None
    if not run.registry.finish(run.record.id, runner=str(run.record.runner), state=state, summary=summary,
                               now=run.now(), next_due_at=next_due, error=error, only_sources=rest):
        record = require_batch(run.registry, run.record.id)
        if record.state == "running" and run.opener:  # taken over: its lease ran out under this worker
            raise ConfigError(f"Lô {run.record.id} không còn do tiến trình này chạy", fix="xem `sohoa batch show`")
        return record  # another worker of the run recorded it first
    record = require_batch(run.registry, run.record.id)
    if FlowRunContext.get() is not None:  # published with the flow run (outside one, nothing ran)
        create_markdown_artifact(key=record.id, markdown=batch_markdown(record, statuses),
                                 description=f"sohoa: lô {record.id}")
    return record


def run_claimed(run: BatchRun) -> BatchRecord:
    """Plan (as the run's opener), digitise the documents this worker claims, and record the batch's outcome when
    it is the last worker on it; a broken run marks the batch failed."""
    with heartbeat(run.settings.heartbeat_interval_s, lambda: _renew(run), run.record.id):
        try:
            if run.opener and not run.registry.queue.state(run.record.id, worker=run.runner, now_s=0.0).ready:
                open_queue(run, plan_batch(run.record, run.services))
            execute(run)
        except KeyboardInterrupt:
            run.stopped = "cancel"
            finish_run(run)
            raise
        except Exception as exc:
            return finish_run(run, error=str(exc))
        return finish_run(run)


OPENS_FROM: tuple[BatchState, ...] = ("queued", "partial", "done", "failed")  # nightly: cron batches recur


def claimed_run(settings: Settings, registry: BatchRegistry, batch_id: str, clock: Clock,
                window: NightWindow | None, *, from_states: tuple[BatchState, ...] = OPENS_FROM) -> BatchRun | None:
    """Open a run of the batch for this worker (or find it opened by it already), take over a run whose lease ran
    out (its workers are gone), or join the run under way (another process or host opened it: this worker shares
    its queue). None when the batch cannot run now (cancelled, or it changed state meanwhile)."""
    me = this_runner(settings.host_id)
    record = require_batch(registry, batch_id)
    opener = record.state == "running" and record.runner == me
    if not opener:
        moment = clock()
        opener = registry.claim(record.id, runner=me, now=iso(moment, settings.timezone),
                                from_states=from_states,
                                expired_before=moment.timestamp(), lease_until=moment.timestamp() + settings.lease_s)
        record = require_batch(registry, batch_id)
        if opener:
            _CLAIMED_AT[record.id] = time.monotonic()
        elif not _queue_filled(registry, record.id, settings):
            return None
    return BatchRun(record=record, registry=registry, settings=settings, services=services_for(settings), clock=clock,
                    runner=me, window=window, opener=opener, started=_CLAIMED_AT.get(record.id, time.monotonic()))


def _queue_filled(registry: BatchRegistry, batch_id: str, settings: Settings) -> bool:
    """A worker joining a run waits while its opener fills the queue (at most a lease's time); False when the
    batch is no longer running (or the queue is still empty: the next nightly run will look again)."""
    deadline = time.monotonic() + settings.lease_s
    while True:
        record = require_batch(registry, batch_id)
        if record.state != "running":
            return False
        if registry.queue.state(batch_id, worker="", now_s=0.0).ready:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.5, settings.heartbeat_interval_s))


_CLAIMED_AT: dict[str, float] = {}  # batch id → when this process claimed the batch (a run's elapsed time starts there)
