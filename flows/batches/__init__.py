"""Batches, schedules and overnight runs: ``sohoa batch …`` and the Prefect flow ``nightly_digitisation``.

A batch (lô) is a scan folder registered in the archive's batch registry (``storage.batches``) with a schedule:

- ``now``: digitised at once, in the calling process (``sohoa batch add --when now``), like ``sohoa digitise``;
- ``tonight``: queued; the next nightly run takes it;
- a cron expression (5 fields, ``SOHOA_TIMEZONE``): queued until the cron fires, then taken by the first nightly
  run from that time on. Cron batches recur: every fire runs the folder again, and since documents already in
  the archive are skipped, only new scans are digitised.

The nightly run (``nightly_digitisation``, deployed by ``sohoa serve`` every 15 minutes inside the window) takes the
due batches in creation order and digitises them document by document (up to ``workers + 1`` documents in flight,
their pages in the shared OCR pool). Before each document starts it checks the window (``SOHOA_NIGHT_WINDOW``,
default 22:00-06:00) and the batch's cancel request: once the window has closed no new document is started, the
documents in flight finish, and the batch stays ``partial`` for the next night. One nightly run works at a time on
each host (a lease in the registry, ``nightly:HOST``, renewed while it runs and void once it has run out); a later
scheduled run on the same host that finds it held ends at once. Nightly runs of several hosts (and ``now`` runs)
share the documents of the same batches through the registry's work queue (``flows.batches.running``): each
document is digitised by one of them.

States: queued → running → done (every document done or needing review) | failed (some documents failed:
``sohoa batch retry ID --failed-only``) | partial (documents left for the next window) | cancelled.

The package, by job: ``schedule`` (cron, the window, run leases), ``status`` (documents' statuses, counts,
labels), ``commands`` (add / list / show / cancel / retry), ``running`` (plan, execute and record a claimed batch),
``report`` (markdown artifacts); this module holds the Prefect flows (their deployment entrypoint,
``flows.batches.nightly_digitisation``, is registered in work pools, so it stays here) and ``run_now``.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.batches.commands import (
    add_batch,
    batch_details,
    cancel_batch,
    list_batches,
    new_batch_id,
    retry_batch,
    runs_now,
    visible_batches,
    visible_statuses,
)
from flows.batches.report import batch_markdown, night_markdown
from flows.batches.running import (
    claimed_run,
    finish_run,
    heartbeat,
    open_queue,
    plan_batch,
    remaining_plan,
    run_claimed,
)
from flows.batches.schedule import (
    NIGHTLY_EVERY_MIN,
    Clock,
    is_due,
    iso,
    lease_expired,
    next_fire,
    nightly_cron,
    parse_schedule,
    system_clock,
    this_runner,
    window_open,
)
from flows.batches.status import (
    DOC_LABELS,
    STATE_LABELS,
    DocumentStatus,
    batch_view,
    document_statuses,
    require_batch,
    summarise,
)
from flows.digitise import page_total
from flows.wiring import Services, open_batch_registry, services_for
from schemas.errors import ConfigError
from schemas.settings import Settings
from storage.batches import BatchRecord, BatchRegistry, BatchState

# a batch that ended is run again by `sohoa batch retry` only: a process started together with another one, but
# late, must not start a second run of what the first one just did
RUNS_NOW_FROM: tuple[BatchState, ...] = ("queued", "partial")
NIGHTLY_LEASE = "nightly"  # one nightly run per host: the lease is named "nightly:HOST"


@flow(name="batch_digitisation", flow_run_name="{batch_id}", log_prints=False, validate_parameters=False)
def batch_digitisation(settings: Settings, batch_id: str, clock: Clock | None = None) -> BatchRecord:
    """Digitise one registered batch now (no window), document by document; publishes the batch's summary."""
    clock = clock or system_clock(settings.timezone)
    with open_batch_registry(settings) as registry:
        run = claimed_run(settings, registry, batch_id, clock, window=None, from_states=RUNS_NOW_FROM)
        if run is None:  # its run ended meanwhile (the other workers did the rest): nothing left to do
            return require_batch(registry, batch_id)
        return run_claimed(run)


@flow(name="nightly_digitisation", log_prints=False, validate_parameters=False)
def nightly_digitisation(archive: str | None = None, clock: Clock | None = None) -> list[BatchRecord]:
    """Digitise the due batches of ``archive`` (default: ``SOHOA_ARCHIVE``) in creation order while the nightly
    window (``SOHOA_NIGHT_WINDOW``) is open, sharing their documents with the workers of other hosts; publishes a
    summary artifact. ``clock`` is for tests."""
    settings = Settings(archive=Path(archive)) if archive else Settings()
    clock = clock or system_clock(settings.timezone)
    window, tz = settings.night_window, settings.timezone
    log = get_run_logger()
    me = this_runner(settings.host_id)
    lease = f"{NIGHTLY_LEASE}:{settings.host_id}"
    ran: list[BatchRecord] = []

    def hold() -> bool:
        now = clock()
        return registry.acquire_lease(lease, holder=me, now=iso(now, tz), now_s=now.timestamp(),
                                      expires_at=now.timestamp() + settings.lease_s)

    with open_batch_registry(settings) as registry:
        if not hold():
            log.info("Một lượt chạy đêm khác của máy này đang làm việc (%s): lượt này không làm gì",
                     registry.lease_holder(lease))
            return ran
        try:
            with heartbeat(settings.heartbeat_interval_s, hold, lease):
                if not window_open(window, clock(), tz):
                    log.info("Ngoài khung giờ đêm %s: không bắt đầu lô nào", window)
                ran = _nightly_batches(settings, registry, clock)
            create_markdown_artifact(key="nightly-digitisation",
                                     markdown=night_markdown(ran, window, iso(clock(), tz)),
                                     description="sohoa: số hóa ban đêm")
        finally:
            registry.release_lease(lease, holder=me)
    return ran


def _nightly_batches(settings: Settings, registry: BatchRegistry, clock: Clock) -> list[BatchRecord]:
    """Each due batch once, in creation order: opened, joined or taken over, its claimed documents digitised."""
    ran: list[BatchRecord] = []
    tried: set[str] = set()
    while True:
        now = clock()
        due = [r for r in registry.batches()
               if r.id not in tried and is_due(r, now, settings.night_window, settings.timezone)]
        if not due:
            return ran
        tried.add(due[0].id)
        run = claimed_run(settings, registry, due[0].id, clock, window=settings.night_window)
        if run is not None:
            ran.append(run_claimed(run))


def _drain_prefetched(services: Services) -> None:
    """Pages OCR'd ahead for documents that did not start (cancelled): wait for them and remove their scratch."""
    for identity in list(services.prefetched):
        work, pending = services.prefetched.pop(identity)
        with contextlib.suppress(BaseException):
            pages: list[Future[Any]] = pending.result()
            wait_all(pages)
        shutil.rmtree(work, ignore_errors=True)


def run_now(settings: Settings, batch_id: str, *, clock: Clock | None = None) -> BatchRecord:
    """Run a queued batch at once in this process (``sohoa batch add --when now``), like ``sohoa digitise``:
    nothing to do starts no flow; otherwise Prefect starts as for ``sohoa digitise`` (``flows.run.prefect_ready``:
    its local API boots while the first pages are OCR'd), then the ``batch_digitisation`` flow runs."""
    from flows.run import prefect_ready

    clock = clock or system_clock(settings.timezone)
    services = services_for(settings)
    with open_batch_registry(settings) as registry:
        run = claimed_run(settings, registry, batch_id, clock, window=None, from_states=RUNS_NOW_FROM)
        if run is None:
            record = require_batch(registry, batch_id)
            raise ConfigError(f"Lô {batch_id} không chạy được lúc này ({STATE_LABELS[record.state]})",
                              fix=f"xem `sohoa batch show {batch_id}`; lô đã kết thúc thì chạy lại bằng "
                                  f"`sohoa batch retry {batch_id} --when now`")
        try:
            plan = plan_batch(run.record, services) if run.opener else remaining_plan(run)
        except Exception as exc:
            return finish_run(run, error=str(exc))
        if run.opener:  # filled now: workers of other processes may start on it while Prefect starts here
            open_queue(run, plan)
        if not plan.todo:  # everything is archived (or taken by other workers) already: no orchestrator needed
            return finish_run(run)
        services.progress.start(len(plan.todo), page_total(plan.todo, settings))
        try:
            with prefect_ready(settings, services, plan.todo) as runner:
                return batch_digitisation.with_options(task_runner=runner)(settings, batch_id,  # type: ignore[arg-type]
                                                                           clock=clock)
        except BaseException as exc:
            record = require_batch(registry, batch_id)
            if record.state == "running" and record.runner == run.runner:  # the flow did not get to record it
                # (this worker opened the run; a worker that joined it leaves it to the others)
                run.stopped = "cancel" if isinstance(exc, KeyboardInterrupt) else None
                finish_run(run, error=None if run.stopped else f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _drain_prefetched(services)


__all__ = [
    "DOC_LABELS",
    "NIGHTLY_EVERY_MIN",
    "NIGHTLY_LEASE",
    "STATE_LABELS",
    "Clock",
    "DocumentStatus",
    "add_batch",
    "batch_details",
    "batch_digitisation",
    "batch_markdown",
    "batch_view",
    "cancel_batch",
    "document_statuses",
    "is_due",
    "iso",
    "lease_expired",
    "list_batches",
    "new_batch_id",
    "next_fire",
    "night_markdown",
    "nightly_cron",
    "nightly_digitisation",
    "parse_schedule",
    "retry_batch",
    "run_now",
    "runs_now",
    "summarise",
    "system_clock",
    "this_runner",
    "visible_batches",
    "visible_statuses",
    "window_open",
]
