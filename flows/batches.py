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
documents in flight finish, and the batch stays ``partial`` for the next night. One nightly run works at a time
(a lease in the registry); a later scheduled run that finds the lease held ends at once.

States: queued → running → done (every document done or needing review) | failed (some documents failed:
``sohoa batch retry ID --failed-only``) | partial (documents left for the next window) | cancelled.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed
from pydantic import BaseModel, Field

from flows.access import (
    TOP_LEVEL,
    Principal,
    catalog_levels,
    level_of_metadata,
    record_level,
    visible_items,
    visible_reasons,
)
from flows.digitise import compact_search_index, document_tasks, page_total, task_result
from flows.document import prefetch_pages
from flows.intake import quarantined
from flows.wiring import CATALOG_FILE, Services, build_object_store, services_for
from pipeline.load import BATCH_FILE, check_file_code, discover_documents, document_id, read_batch_info
from schemas.document import DocumentResult, DocumentSource
from schemas.errors import ConfigError, NotFoundError, SohoaError
from schemas.settings import NightWindow, Settings
from storage.batches import BatchRecord, BatchRegistry, BatchState, BatchSummary
from storage.catalog import SqliteCatalog
from storage.objects import ObjectStore

Clock = Callable[[], datetime]  # returns an aware datetime
StopReason = Literal["window", "cancel"]

NIGHTLY_LEASE = "nightly"
NIGHTLY_EVERY_MIN = 15
STATE_LABELS: dict[str, str] = {"queued": "chờ chạy", "running": "đang chạy", "done": "xong", "failed": "có lỗi",
                                "cancelled": "đã hủy", "partial": "dở dang"}
DOC_LABELS = {"done": "xong", "needs_review": "cần xem lại", "failed": "lỗi", "pending": "chưa xử lý",
              "quarantined": "bị giữ lại (cách ly)"}
_ACTIVE: tuple[BatchState, ...] = ("queued", "running", "partial")
_WHEN_FIX = 'dùng --when now, --when tonight hoặc một biểu thức cron 5 trường, vd. --when "0 22 * * 6"'


# --- time, schedules and the window: pure functions --------------------------------------------------------------


def system_clock(timezone: str) -> Clock:
    tz = ZoneInfo(timezone)
    return lambda: datetime.now(tz)


def iso(moment: datetime, timezone: str) -> str:
    """An aware time as ISO 8601 in the archive's time zone (``2026-11-27T22:00:05+07:00``)."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def parse_schedule(text: str) -> str:
    """``now``, ``tonight`` or a valid 5-field cron expression (normalised spacing); ConfigError otherwise."""
    value = " ".join(text.strip().split())
    if value.lower() in ("now", "tonight"):
        return value.lower()
    from prefect._vendor.croniter import croniter  # the cron engine Prefect's own schedules use

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ConfigError(f"Lịch chạy không hợp lệ: {text!r}", fix=_WHEN_FIX)
    return value


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (aware) at which ``cron`` fires, in ``after``'s time zone."""
    from prefect._vendor.croniter import croniter

    fire = croniter(cron, after).get_next(datetime)
    assert isinstance(fire, datetime)
    return fire


def window_open(window: NightWindow, now: datetime, timezone: str) -> bool:
    """Whether ``now`` (aware) falls inside the nightly window, read on the archive's local clock."""
    return window.contains(now.astimezone(ZoneInfo(timezone)).time())


def is_due(record: BatchRecord, now: datetime, window: NightWindow, timezone: str,
           alive: Callable[[str], bool]) -> bool:
    """Whether a nightly run at ``now`` should take ``record`` (the window must be open).

    Queued and partial batches are due (not before their ``next_due_at``); so are cron batches that finished
    (done or failed) once their cron has fired again; and a batch left ``running`` by a process that is gone.
    """
    if not window_open(window, now, timezone):
        return False
    if record.state == "running":
        return record.runner is not None and not alive(record.runner)
    recurring = record.schedule not in ("now", "tonight") and record.state in ("done", "failed")
    if record.state not in ("queued", "partial") and not recurring:
        return False
    return record.next_due_at is None or datetime.fromisoformat(record.next_due_at) <= now


def nightly_cron(window: NightWindow, every_min: int = NIGHTLY_EVERY_MIN) -> str:
    """The cron of the nightly deployment: every ``every_min`` minutes from the window's start, only in the hours
    that hold at least one such time inside the window (``22:00-06:00`` → ``*/15 0-5,22-23 * * *``)."""
    first = window.start.minute % every_min
    minutes = list(range(first, 60, every_min))
    hours = sorted({h for h in range(24) for m in minutes if window.contains(dtime(h, m))})
    minute_field = f"*/{every_min}" if first == 0 else f"{first}-59/{every_min}"
    return f"{minute_field} {_ranges(hours) if len(hours) < 24 else '*'} * * *"


def _ranges(values: list[int]) -> str:
    parts: list[str] = []
    for v in values:
        if parts and int(parts[-1].split("-")[-1]) == v - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{v}"
        else:
            parts.append(str(v))
    return ",".join(parts)


# --- runners --------------------------------------------------------------------------------------------------------


def this_runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def runner_alive(runner: str) -> bool:
    """False only when ``runner`` (``host:pid``) is a process of this machine that no longer exists."""
    host, _, pid = runner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: we cannot tell, so assume it runs
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(record: BatchRecord) -> str | None:
    """The runner of a batch left ``running`` by a process that is gone (else None)."""
    if record.state == "running" and record.runner is not None and not runner_alive(record.runner):
        return record.runner
    return None


# --- the registry and the documents of a batch -----------------------------------------------------------------


def open_registry(settings: Settings) -> BatchRegistry:
    root = settings.archive_path()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Không tạo được thư mục kho lưu trữ {root}: {exc}", fix="chọn --archive khác") from exc
    return BatchRegistry(root / CATALOG_FILE)


def _require(registry: BatchRegistry, batch_id: str) -> BatchRecord:
    record = registry.get(batch_id.strip())
    if record is None:
        raise NotFoundError(f"Không có lô {batch_id!r} trong kho {registry.path.parent}",
                            fix="xem danh sách mã lô bằng `sohoa batch list` (và kiểm tra --archive)")
    return record


class DocumentStatus(BaseModel):
    """One document of a batch as ``sohoa batch show`` reports it."""

    source: str
    id: str | None = None
    status: Literal["done", "needs_review", "failed", "pending", "quarantined"]
    pages: int = 0
    error: str | None = None
    review_reasons: list[str] = Field(default_factory=list)


QUARANTINE_MARK = "[cách ly] "  # prefix of a registry outcome that records a document held at intake


def document_statuses(record: BatchRecord, registry: BatchRegistry, catalog: SqliteCatalog) -> list[DocumentStatus]:
    """Every document of the batch folder (plus any a run attempted that has left it), its status read from the
    catalog (done, needs_review) or the registry (failed, with the reason); ``pending`` when not attempted."""
    outcomes = registry.outcomes(record.id)
    folder = Path(record.folder)
    try:
        sources = [d.source for d in discover_documents(folder)] if folder.is_dir() else []
    except (OSError, SohoaError):
        sources = []
    sources += sorted(s for s in outcomes if s not in set(sources))
    statuses = []
    for source in sources:
        outcome = outcomes.get(source)
        entry = catalog.get(outcome.doc_id) if outcome is not None and outcome.doc_id else None
        if entry is not None and (outcome is None or outcome.error is None):
            statuses.append(DocumentStatus(source=source, id=entry.id, status=entry.status, pages=entry.pages,
                                           review_reasons=entry.review_reasons))
        elif outcome is not None and outcome.error is not None and outcome.error.startswith(QUARANTINE_MARK):
            statuses.append(DocumentStatus(source=source, id=outcome.doc_id, status="quarantined",
                                           error=outcome.error[len(QUARANTINE_MARK):]))
        elif outcome is not None and outcome.error is not None:
            statuses.append(DocumentStatus(source=source, id=outcome.doc_id, status="failed", error=outcome.error))
        else:
            statuses.append(DocumentStatus(source=source, status="pending"))
    return statuses


def summarise(statuses: list[DocumentStatus], *, skipped: int = 0, pages: int = 0, elapsed_s: float = 0.0,
              stopped: StopReason | None = None) -> BatchSummary:
    count = {s: sum(d.status == s for d in statuses)
             for s in ("done", "needs_review", "failed", "pending", "quarantined")}
    rate = round(60.0 * pages / elapsed_s, 2) if pages and elapsed_s > 0 else 0.0
    return BatchSummary(documents=len(statuses), skipped=skipped, pages=pages, pages_per_minute=rate,
                        elapsed_s=round(elapsed_s, 2), stopped=stopped, **count)


def batch_view(record: BatchRecord) -> dict[str, object]:
    """A batch as the ``--json`` output of ``sohoa batch`` shows it."""
    data = record.model_dump(mode="json")
    data["name"] = record.name
    data["interrupted"] = _stale(record) is not None  # left running by a process that is gone
    return data


# --- sohoa batch add / list / show / cancel / retry ----------------------------------------------------------------


def _toml_fonds(folder: Path) -> str | None:
    """``fonds`` (phông lưu trữ) from ``batch.toml`` (top level or ``[ho_so]``); read_batch_info checked the file."""
    path = folder / BATCH_FILE
    if not path.is_file():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    value = data.get("ho_so", data).get("fonds", data.get("fonds"))
    return str(value) if value else None


def new_batch_id(now: datetime, timezone: str) -> str:
    """``lo-YYYYMMDD-xxxx``: the creation day and 16 random bits."""
    return f"lo-{now.astimezone(ZoneInfo(timezone)):%Y%m%d}-{secrets.token_hex(2)}"


def add_batch(settings: Settings, folder: Path, *, when: str = "now", file_code: str | None = None,
              fonds: str | None = None, title: str | None = None, clock: Clock | None = None,
              before_register: Callable[[str], object] | None = None) -> BatchRecord:
    """Register a batch folder (queued). ``batch.toml`` gives defaults for the hồ sơ code, title and fonds.

    ``before_register(schedule)`` runs once the folder and options are checked, before anything is recorded
    (the CLI checks the OCR tools there for a batch it is about to run)."""
    clock = clock or system_clock(settings.timezone)
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {folder}", fix="kiểm tra lại đường dẫn DIR")
    schedule = parse_schedule(when)
    check_file_code(file_code, where="--file-code")
    info = read_batch_info(folder)  # a broken batch.toml stops here
    docs = discover_documents(folder)
    if not docs:
        raise ConfigError(f"Thư mục lô không có văn bản nào: {folder}",
                          fix="đặt vào đó các tệp quét (PDF, TIFF, JPEG, PNG) hoặc thư mục ảnh trang")
    if before_register is not None:
        before_register(schedule)
    now = clock()
    with open_registry(settings) as registry:
        for other in registry.batches():
            recurring = other.schedule not in ("now", "tonight") and other.state in ("done", "failed")
            if other.folder == str(folder) and (other.state in _ACTIVE or recurring) and _stale(other) is None:
                raise ConfigError(f"Thư mục này đã có lô {other.id} ({STATE_LABELS[other.state]})",
                                  fix=f"xem `sohoa batch show {other.id}`, hoặc `sohoa batch cancel {other.id}` "
                                      "trước khi thêm lại")
        due = None
        if schedule == "now":
            due = iso(now, settings.timezone)
        elif schedule != "tonight":
            due = iso(next_fire(schedule, now.astimezone(ZoneInfo(settings.timezone))), settings.timezone)
        while True:
            record = BatchRecord(id=new_batch_id(now, settings.timezone), folder=str(folder),
                                 file_code=file_code or info.file_code, fonds=fonds or _toml_fonds(folder),
                                 title=title or info.title, schedule=schedule, state="queued",
                                 created_at=iso(now, settings.timezone), next_due_at=due)
            if registry.add(record):
                return record


def list_batches(settings: Settings) -> list[BatchRecord]:
    with open_registry(settings) as registry:
        return registry.batches()


def visible_batches(settings: Settings, principal: Principal | None) -> list[dict[str, object]]:
    """Every batch as ``batch_view`` shows it, its counts recounted over the documents ``principal`` may see."""
    records = list_batches(settings)
    if principal is None or principal.clearance >= TOP_LEVEL:
        return [batch_view(r) for r in records]
    return [batch_details(settings, r.id, principal) for r in records]


def _status_level(status: DocumentStatus, catalog: SqliteCatalog, store: ObjectStore) -> int:
    """The secrecy level of a batch document: from the catalog when it is archived, from its intake record when
    it was held (unknown: the top level); failed and pending documents were never read (level 0)."""
    if status.status in ("done", "needs_review") and status.id:
        entry = catalog.get(status.id)
        return level_of_metadata(entry.metadata) if entry is not None else TOP_LEVEL
    if status.status == "quarantined":
        held = quarantined(store, status.id) if status.id else None
        return record_level(held) if held is not None else TOP_LEVEL
    return 0


def visible_statuses(settings: Settings, statuses: list[DocumentStatus], catalog: SqliteCatalog,
                     principal: Principal | None) -> list[DocumentStatus]:
    """The batch documents ``principal`` may see (``flows.access``): a classified document above their clearance
    is left out entirely (source, id, status and its place in the counts)."""
    if principal is None or principal.clearance >= TOP_LEVEL:
        return statuses
    store = build_object_store(settings)
    levels = catalog_levels(catalog)
    return [s.model_copy(update={"review_reasons": visible_reasons(principal, s.review_reasons, levels)})
            for s in visible_items(principal, statuses, lambda s: _status_level(s, catalog, store))]


def _visible_summary(record: BatchRecord, statuses: list[DocumentStatus]) -> BatchSummary | None:
    """The batch's last-run summary recounted over the documents a restricted reader sees."""
    if record.summary is None:
        return None
    pages = sum(s.pages for s in statuses)
    return summarise(statuses, pages=pages, elapsed_s=record.summary.elapsed_s, stopped=record.summary.stopped)


def batch_details(settings: Settings, batch_id: str, principal: Principal | None = None) -> dict[str, object]:
    """``sohoa batch show``: the batch, the status of each of its documents, its failures and progress, as
    ``principal`` may see them (``None``: the local operator, everything)."""
    with open_registry(settings) as registry:
        record = _require(registry, batch_id)
        catalog = SqliteCatalog(registry.path)
        try:
            statuses = document_statuses(record, registry, catalog)
            shown = visible_statuses(settings, statuses, catalog, principal)
        finally:
            catalog.close()
    restricted = len(shown) != len(statuses) or (principal is not None and principal.clearance < TOP_LEVEL)
    statuses = shown
    counts = summarise(statuses)
    finished = counts.done + counts.needs_review + counts.failed + counts.quarantined
    data = batch_view(record)
    if restricted:
        summary = _visible_summary(record, statuses)
        data["summary"] = summary.model_dump(mode="json") if summary is not None else None
    data["progress"] = {"documents": counts.documents, "finished": finished, "done": counts.done,
                        "needs_review": counts.needs_review, "failed": counts.failed, "pending": counts.pending,
                        "quarantined": counts.quarantined,
                        "percent": round(100.0 * finished / counts.documents, 1) if counts.documents else 0.0}
    data["documents"] = [s.model_dump(mode="json") for s in statuses]
    data["failures"] = [{"source": s.source, "error": s.error} for s in statuses if s.status == "failed"]
    data["needs_review"] = counts.needs_review
    data["folder_missing"] = not Path(record.folder).is_dir()
    return data


def cancel_batch(settings: Settings, batch_id: str, *, clock: Clock | None = None) -> tuple[BatchRecord, str]:
    """Cancel a waiting batch, or ask the process running it to start no new document.

    Returns the batch and what happened: ``cancelled``, ``requested`` (running: stops after the documents in
    flight) or ``nothing`` (already finished)."""
    clock = clock or system_clock(settings.timezone)
    with open_registry(settings) as registry:
        record = _require(registry, batch_id)
        now = iso(clock(), settings.timezone)
        recurring: tuple[BatchState, ...] = ("done", "failed") if record.schedule not in ("now", "tonight") else ()
        if registry.cancel(record.id, now=now, from_states=("queued", "partial", *recurring),
                           stale_runner=_stale(record)):
            return _require(registry, record.id), "cancelled"
        if registry.request_cancel(record.id):
            return _require(registry, record.id), "requested"
        return _require(registry, record.id), "nothing"


def retry_batch(settings: Settings, batch_id: str, *, failed_only: bool = False, when: str | None = None,
                clock: Clock | None = None) -> tuple[BatchRecord, int]:
    """Queue a batch again (documents already archived are skipped when it runs). ``failed_only`` limits the
    next run to the documents that failed. ``when`` (``now``/``tonight``) overrides the batch's schedule for this
    run; a cron batch retried without it is due at the next nightly run.

    Returns the queued batch and the number of documents in scope (0: nothing to retry, nothing queued)."""
    clock = clock or system_clock(settings.timezone)
    if when is not None and parse_schedule(when) not in ("now", "tonight"):
        raise ConfigError(f"--when của retry chỉ nhận now hoặc tonight, không nhận {when!r}",
                          fix="lịch cron là của lô; dùng --when now hoặc --when tonight")
    with open_registry(settings) as registry:
        record = _require(registry, batch_id)
        stale = _stale(record)
        if record.state == "running" and stale is None:
            raise ConfigError(f"Lô {record.id} đang chạy ({record.runner})",
                              fix=f"chờ lô chạy xong, hoặc `sohoa batch cancel {record.id}` rồi chạy lại")
        only: list[str] | None = None
        scope = 0
        if failed_only:
            catalog = SqliteCatalog(registry.path)
            try:
                statuses = document_statuses(record, registry, catalog)
            finally:
                catalog.close()
            only = [s.source for s in statuses if s.status == "failed"]
            scope = len(only)
            if not only:
                return record, 0
        else:
            folder = Path(record.folder)
            if not folder.is_dir():
                raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                                  fix="khôi phục thư mục lô về chỗ cũ, hoặc thêm lô mới bằng `sohoa batch add`")
            scope = len(discover_documents(folder))
        schedule = (when or record.schedule).lower()
        due = iso(clock(), settings.timezone) if schedule != "tonight" else None
        if not registry.requeue(record.id, only_sources=only, next_due_at=due,
                                from_states=("queued", "done", "failed", "cancelled", "partial"),
                                stale_runner=stale):
            raise ConfigError(f"Lô {record.id} vừa bắt đầu chạy", fix="xem `sohoa batch show` rồi thử lại")
        return _require(registry, record.id), scope


def runs_now(record: BatchRecord, when: str | None = None) -> bool:
    return (when or record.schedule).lower() == "now"


# --- running a batch ----------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    todo: list[DocumentSource]  # documents to digitise, in batch order
    skipped: list[DocumentResult] = field(default_factory=list)  # already in the archive


def _plan(record: BatchRecord, services: Services) -> _Plan:
    """The documents of the batch (or of its retry scope) not yet in the archive."""
    folder = Path(record.folder)
    if not folder.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                          fix="khôi phục thư mục lô về chỗ cũ rồi `sohoa batch retry`")
    docs = discover_documents(folder)
    if record.only_sources is not None:
        wanted = set(record.only_sources)
        docs = [d for d in docs if d.source in wanted]
    plan = _Plan(todo=[])
    for doc in docs:
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
                                               pages=entry.pages, review_reasons=entry.review_reasons, skipped=True))
    return plan


@dataclass
class _Run:
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
        error = (result.error or "lỗi không rõ") if result.status == "failed" else None
        if result.status == "quarantined":  # held at intake: recorded with its reason, neither done nor failed
            error = QUARANTINE_MARK + "; ".join(result.review_reasons)
        self.registry.record_outcome(self.record.id, result.source, doc_id=result.id, error=error, now=self.now())


def _execute(run: _Run, plan: _Plan) -> None:
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


def _finish(run: _Run, *, error: str | None = None) -> BatchRecord:
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
    record = _require(run.registry, run.record.id)
    if FlowRunContext.get() is not None:  # published with the flow run (outside one, nothing ran)
        create_markdown_artifact(key=record.id, markdown=batch_markdown(record, statuses),
                                 description=f"sohoa: lô {record.id}")
    return record


def _run_claimed(run: _Run) -> BatchRecord:
    """Plan, digitise and record a batch this process has claimed; a broken run marks the batch failed."""
    try:
        plan = _plan(run.record, run.services)
        _execute(run, plan)
    except KeyboardInterrupt:
        run.stopped = "cancel"
        _finish(run)
        raise
    except Exception as exc:
        return _finish(run, error=str(exc))
    return _finish(run)


def _claimed_run(settings: Settings, registry: BatchRegistry, batch_id: str, clock: Clock,
                 window: NightWindow | None) -> _Run | None:
    """Claim the batch for this process (or find it already claimed by it); None when someone else has it."""
    me = this_runner()
    record = _require(registry, batch_id)
    if not (record.state == "running" and record.runner == me):
        if not registry.claim(record.id, runner=me, now=iso(clock(), settings.timezone),
                              from_states=("queued", "partial", "done", "failed"), stale_runner=_stale(record)):
            return None
        record = _require(registry, batch_id)
        _CLAIMED_AT[record.id] = time.monotonic()
    return _Run(record=record, registry=registry, settings=settings, services=services_for(settings), clock=clock,
                runner=me, window=window, started=_CLAIMED_AT.get(record.id, time.monotonic()))


_CLAIMED_AT: dict[str, float] = {}  # batch id → when this process claimed it (a run's elapsed time starts there)


@flow(name="batch_digitisation", flow_run_name="{batch_id}", log_prints=False, validate_parameters=False)
def batch_digitisation(settings: Settings, batch_id: str, clock: Clock | None = None) -> BatchRecord:
    """Digitise one registered batch now (no window), document by document; publishes the batch's summary."""
    clock = clock or system_clock(settings.timezone)
    with open_registry(settings) as registry:
        run = _claimed_run(settings, registry, batch_id, clock, window=None)
        if run is None:
            raise ConfigError(f"Lô {batch_id} đang do một tiến trình khác chạy", fix="xem `sohoa batch show`")
        return _run_claimed(run)


@flow(name="nightly_digitisation", log_prints=False, validate_parameters=False)
def nightly_digitisation(archive: str | None = None, clock: Clock | None = None) -> list[BatchRecord]:
    """Digitise the due batches of ``archive`` (default: ``SOHOA_ARCHIVE``) in creation order while the nightly
    window (``SOHOA_NIGHT_WINDOW``) is open; publishes a summary artifact. ``clock`` is for tests."""
    settings = Settings(archive=Path(archive)) if archive else Settings()
    clock = clock or system_clock(settings.timezone)
    window, tz = settings.night_window, settings.timezone
    log = get_run_logger()
    me = this_runner()
    ran: list[BatchRecord] = []
    with open_registry(settings) as registry:
        holder = registry.lease_holder(NIGHTLY_LEASE)
        stale = holder if holder is not None and not runner_alive(holder) else None
        if not registry.acquire_lease(NIGHTLY_LEASE, holder=me, now=iso(clock(), tz), stale_holder=stale):
            log.info("Một lượt chạy đêm khác đang làm việc (%s): lượt này không làm gì", holder)
            return ran
        try:
            if not window_open(window, clock(), tz):
                log.info("Ngoài khung giờ đêm %s: không bắt đầu lô nào", window)
            tried: set[str] = set()
            while True:
                now = clock()
                due = [r for r in registry.batches()
                       if r.id not in tried and is_due(r, now, window, tz, runner_alive)]
                if not due:
                    break
                tried.add(due[0].id)
                run = _claimed_run(settings, registry, due[0].id, clock, window=window)
                if run is not None:
                    ran.append(_run_claimed(run))
            create_markdown_artifact(key="nightly-digitisation",
                                     markdown=night_markdown(ran, window, iso(clock(), tz)),
                                     description="sohoa: số hóa ban đêm")
        finally:
            registry.release_lease(NIGHTLY_LEASE, holder=me)
    return ran


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
    nothing to do starts no flow; otherwise Prefect's local API (when no server is configured) boots while the
    first pages are OCR'd, then the ``batch_digitisation`` flow runs."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.local_api import LocalPrefectApi
    from flows.prefect_env import uses_local_api

    clock = clock or system_clock(settings.timezone)
    services = services_for(settings)
    with open_registry(settings) as registry:
        run = _claimed_run(settings, registry, batch_id, clock, window=None)
        if run is None:
            record = _require(registry, batch_id)
            raise ConfigError(f"Lô {batch_id} không chạy được lúc này ({STATE_LABELS[record.state]})",
                              fix="xem `sohoa batch show`; lô đang chạy ở tiến trình khác thì chờ hoặc hủy")
        try:
            plan = _plan(run.record, services)
        except Exception as exc:
            return _finish(run, error=str(exc))
        if not plan.todo:  # everything is archived already: no orchestrator needed
            for result in plan.skipped:
                run.note(result)
            return _finish(run)
        services.progress.start(len(plan.todo), page_total(plan.todo, settings))
        try:
            with contextlib.ExitStack() as stack:
                if uses_local_api():
                    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
                    api = stack.enter_context(LocalPrefectApi(startup_timeout_s=timeout))
                    stop = threading.Event()
                    ahead = settings.workers * settings.prefetch_pages_per_worker  # pages Dask workers cannot take
                    prefetch = threading.Thread(
                        target=prefetch_pages, name="prefetch", daemon=True, args=(plan.todo, services),
                        kwargs={"max_pages": ahead if settings.task_runner == "threads" else 0, "stop": stop})
                    prefetch.start()
                    try:
                        api.wait_ready()
                    finally:
                        stop.set()
                        prefetch.join()
                    stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api.url}))
                runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=settings.workers + 1)
                return batch_digitisation.with_options(task_runner=runner)(settings, batch_id,  # type: ignore[arg-type]
                                                                           clock=clock)
        except BaseException as exc:
            record = _require(registry, batch_id)
            if record.state == "running" and record.runner == run.runner:  # the flow did not get to record it
                run.stopped = "cancel" if isinstance(exc, KeyboardInterrupt) else None
                _finish(run, error=None if run.stopped else f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _drain_prefetched(services)


# --- reports ------------------------------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|")


def batch_markdown(record: BatchRecord, statuses: Iterable[DocumentStatus]) -> str:
    s = record.summary or BatchSummary()
    lines = [f"# Lô {record.id}: {STATE_LABELS[record.state]}", "",
             f"- Thư mục: `{record.folder}`" + (f", hồ sơ {record.file_code}" if record.file_code else ""),
             f"- Văn bản: {s.documents} — {s.done} xong, {s.needs_review} cần xem lại, {s.failed} lỗi, "
             f"{s.pending} chưa xử lý ({s.skipped} đã có trong kho, bỏ qua)",
             f"- {s.pages} trang trong {s.elapsed_s:.0f} s ({s.pages_per_minute:.1f} trang/phút)"]
    if s.stopped == "window":
        lines.append("- Dừng nhận văn bản mới vì hết khung giờ đêm; phần còn lại chạy đêm sau")
    elif s.stopped == "cancel":
        lines.append("- Đã hủy theo yêu cầu")
    if record.error:
        lines.append(f"- Lỗi: {_cell(record.error)}")
    failed = [d for d in statuses if d.status == "failed"]
    if failed:
        lines += ["", "| Văn bản lỗi | Lý do |", "|---|---|"]
        lines += [f"| `{_cell(d.source)}` | {_cell(d.error)} |" for d in failed[:200]]
    return "\n".join(lines)


def night_markdown(ran: list[BatchRecord], window: NightWindow, at: str) -> str:
    lines = [f"# Số hóa ban đêm ({window}): {len(ran)} lô", "", f"Kết thúc lúc {at}."]
    if ran:
        lines += ["", "| Lô | Trạng thái | Xong | Cần xem lại | Lỗi | Chưa xử lý | Trang | Trang/phút |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in ran:
            s = r.summary or BatchSummary()
            lines.append(f"| {r.id} (`{_cell(r.name)}`) | {STATE_LABELS[r.state]} | {s.done} | {s.needs_review} | "
                         f"{s.failed} | {s.pending} | {s.pages} | {s.pages_per_minute:.1f} |")
    return "\n".join(lines)


__all__ = [
    "DocumentStatus", "add_batch", "batch_details", "batch_digitisation", "batch_view", "cancel_batch", "is_due",
    "list_batches", "next_fire", "nightly_cron", "nightly_digitisation", "parse_schedule", "retry_batch", "run_now",
    "window_open",
]
