"""``sohoa batch add / list / show / cancel / retry`` (and the web app's batch page): registry commands, no
digitisation (running a batch is ``flows.batches.running`` and the flows of ``flows.batches``)."""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.access import (
    TOP_LEVEL,
    Principal,
    catalog_levels,
    level_of_metadata,
    record_level,
    visible_items,
    visible_reasons,
    visible_status,
)
from flows.batches.schedule import Clock, iso, lease_expired, next_fire, parse_schedule, system_clock
from flows.batches.status import (
    STATE_LABELS,
    DocumentStatus,
    batch_view,
    document_statuses,
    require_batch,
    summarise,
)
from flows.inbox import batch_documents, batch_info, batch_label, batch_toml, is_inbox
from flows.intake import quarantined
from flows.wiring import build_object_store, open_batch_registry, open_catalog
from pipeline.load import check_file_code
from schemas.errors import ConfigError
from schemas.reasons import Reason
from schemas.settings import Settings
from storage.batches import BatchRecord, BatchState, BatchSummary
from storage.catalog import Catalog
from storage.objects import ObjectStore

_ACTIVE: tuple[BatchState, ...] = ("queued", "running", "partial")


def _toml_fonds(text: bytes | None) -> str | None:
    """``fonds`` (phông lưu trữ) from ``batch.toml`` (top level or ``[ho_so]``); read_batch_info checked the file."""
    if text is None:
        return None
    data = tomllib.loads(text.decode("utf-8"))
    value = data.get("ho_so", data).get("fonds", data.get("fonds"))
    return str(value) if value else None


def new_batch_id(now: datetime, timezone: str) -> str:
    """``lo-YYYYMMDD-xxxx``: the creation day and 16 random bits."""
    return f"lo-{now.astimezone(ZoneInfo(timezone)):%Y%m%d}-{secrets.token_hex(2)}"


def add_batch(settings: Settings, folder: Path | str, *, when: str = "now", file_code: str | None = None,
              fonds: str | None = None, title: str | None = None, clock: Clock | None = None,
              before_register: Callable[[str], object] | None = None) -> BatchRecord:
    """Register a batch folder, or an S3 inbox prefix ``s3://bucket/prefix/`` (``flows.inbox``), queued.
    ``batch.toml`` gives defaults for the hồ sơ code, title and fonds.

    ``before_register(schedule)`` runs once the folder and options are checked, before anything is recorded
    (the CLI checks the OCR tools there for a batch it is about to run)."""
    clock = clock or system_clock(settings.timezone)
    folder = batch_label(folder) if is_inbox(folder) else Path(folder).expanduser().resolve()
    if isinstance(folder, Path) and not folder.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                          fix="kiểm tra lại đường dẫn DIR (một thư mục, hoặc s3://BUCKET/THƯ_MỤC/)")
    schedule = parse_schedule(when)
    check_file_code(file_code, where="--file-code")
    info = batch_info(folder, settings)  # a broken batch.toml (a missing inbox prefix) stops here
    docs = batch_documents(folder, settings)
    if not docs:
        raise ConfigError(f"Thư mục lô không có văn bản nào: {folder}",
                          fix="đặt vào đó các tệp quét (PDF, TIFF, JPEG, PNG) hoặc thư mục ảnh trang")
    if before_register is not None:
        before_register(schedule)
    now = clock()
    with open_batch_registry(settings) as registry:
        for other in registry.batches():
            recurring = other.schedule not in ("now", "tonight") and other.state in ("done", "failed")
            if other.folder == str(folder) and (other.state in _ACTIVE or recurring) and not lease_expired(other, now):
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
                                 file_code=file_code or info.file_code,
                                 fonds=fonds or _toml_fonds(batch_toml(folder, settings)),
                                 title=title or info.title, schedule=schedule, state="queued",
                                 created_at=iso(now, settings.timezone), next_due_at=due)
            if registry.add(record):
                return record


def list_batches(settings: Settings) -> list[BatchRecord]:
    with open_batch_registry(settings) as registry:
        return registry.batches()


def visible_batches(settings: Settings, principal: Principal | None) -> list[dict[str, object]]:
    """Every batch as ``batch_view`` shows it, its counts recounted over the documents ``principal`` may see."""
    records = list_batches(settings)
    if principal is None or principal.clearance >= TOP_LEVEL:
        return [batch_view(r) for r in records]
    return [batch_details(settings, r.id, principal) for r in records]


def _status_level(status: DocumentStatus, catalog: Catalog, store: ObjectStore) -> int:
    """The secrecy level of a batch document: from the catalog when it is archived, from its intake record when
    it was held (unknown: the top level); failed and pending documents were never read (level 0)."""
    if status.status in ("done", "needs_review") and status.id:
        entry = catalog.get(status.id)
        return level_of_metadata(entry.metadata) if entry is not None else TOP_LEVEL
    if status.status == "quarantined":
        held = quarantined(store, status.id) if status.id else None
        return record_level(held) if held is not None else TOP_LEVEL
    entry = catalog.get(status.id) if status.id else None  # failed after it was read: its catalogued level
    return level_of_metadata(entry.metadata) if entry is not None else 0


def visible_statuses(settings: Settings, statuses: list[DocumentStatus], catalog: Catalog,
                     principal: Principal | None) -> list[DocumentStatus]:
    """The batch documents ``principal`` may see (``flows.access``): a classified document above their clearance
    is left out entirely (source, id, status and its place in the counts)."""
    if principal is None or principal.clearance >= TOP_LEVEL:
        return statuses
    store = build_object_store(settings)
    levels = catalog_levels(catalog)
    return [_shown_status(s, visible_reasons(principal, s.review_reason_codes, levels))
            for s in visible_items(principal, statuses, lambda s: _status_level(s, catalog, store))]


def _shown_status(status: DocumentStatus, shown: list[Reason]) -> DocumentStatus:
    """A batch document with the reasons its reader may read; flagged only by hidden ones, it reads as done."""
    return status.model_copy(update={
        "review_reason_codes": shown,
        "status": visible_status(status.status, status.review_reason_codes, shown)})


def _visible_summary(record: BatchRecord, statuses: list[DocumentStatus], *, hidden: bool) -> BatchSummary | None:
    """The batch's last-run summary recounted over the documents a restricted reader sees; with documents hidden
    from them, without the run's duration (time spent on documents they may not know of)."""
    if record.summary is None:
        return None
    pages = sum(s.pages for s in statuses)
    elapsed_s = 0.0 if hidden else record.summary.elapsed_s
    return summarise(statuses, pages=pages, elapsed_s=elapsed_s, stopped=record.summary.stopped)


def batch_details(settings: Settings, batch_id: str, principal: Principal | None = None) -> dict[str, object]:
    """``sohoa batch show``: the batch, the status of each of its documents, its failures and progress, as
    ``principal`` may see them (``None``: the local operator, everything)."""
    with open_batch_registry(settings) as registry:
        record = require_batch(registry, batch_id)
        catalog = open_catalog(settings)
        try:
            statuses = document_statuses(record, registry, catalog)
            shown = visible_statuses(settings, statuses, catalog, principal)
        finally:
            catalog.close()
    restricted = len(shown) != len(statuses) or (principal is not None and principal.clearance < TOP_LEVEL)
    all_statuses, statuses = statuses, shown
    counts = summarise(statuses)
    finished = counts.done + counts.needs_review + counts.failed + counts.quarantined
    data = batch_view(record)
    if restricted:
        summary = _visible_summary(record, statuses, hidden=len(shown) != len(all_statuses))
        data["summary"] = summary.model_dump(mode="json") if summary is not None else None
    data["progress"] = {"documents": counts.documents, "finished": finished, "done": counts.done,
                        "needs_review": counts.needs_review, "failed": counts.failed, "pending": counts.pending,
                        "quarantined": counts.quarantined,
                        "percent": round(100.0 * finished / counts.documents, 1) if counts.documents else 0.0}
    data["documents"] = [s.model_dump(mode="json") for s in statuses]
    data["failures"] = [{"source": s.source, "error": s.error} for s in statuses if s.status == "failed"]
    data["needs_review"] = counts.needs_review
    data["folder_missing"] = not is_inbox(record.folder) and not Path(record.folder).is_dir()
    return data


def cancel_batch(settings: Settings, batch_id: str, *, clock: Clock | None = None) -> tuple[BatchRecord, str]:
    """Cancel a waiting batch, or ask the process running it to start no new document.

    Returns the batch and what happened: ``cancelled``, ``requested`` (running: stops after the documents in
    flight) or ``nothing`` (already finished)."""
    clock = clock or system_clock(settings.timezone)
    with open_batch_registry(settings) as registry:
        record = require_batch(registry, batch_id)
        moment = clock()
        now = iso(moment, settings.timezone)
        recurring: tuple[BatchState, ...] = ("done", "failed") if record.schedule not in ("now", "tonight") else ()
        if registry.cancel(record.id, now=now, from_states=("queued", "partial", *recurring),
                           expired_before=moment.timestamp()):  # a run whose workers are gone: cancelled at once
            return require_batch(registry, record.id), "cancelled"
        if registry.request_cancel(record.id):
            return require_batch(registry, record.id), "requested"
        return require_batch(registry, record.id), "nothing"


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
    with open_batch_registry(settings) as registry:
        record = require_batch(registry, batch_id)
        moment = clock()
        if record.state == "running" and not lease_expired(record, moment):
            raise ConfigError(f"Lô {record.id} đang chạy ({record.runner})",
                              fix=f"chờ lô chạy xong, hoặc `sohoa batch cancel {record.id}` rồi chạy lại")
        only: list[str] | None = None
        scope = 0
        if failed_only:
            catalog = open_catalog(settings)
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
            if not is_inbox(record.folder) and not folder.is_dir():
                raise ConfigError(f"Không tìm thấy thư mục lô: {folder}",
                                  fix="khôi phục thư mục lô về chỗ cũ, hoặc thêm lô mới bằng `sohoa batch add`")
            scope = len(batch_documents(record.folder, settings))
        schedule = (when or record.schedule).lower()
        due = iso(moment, settings.timezone) if schedule != "tonight" else None
        if not registry.requeue(record.id, only_sources=only, next_due_at=due,
                                from_states=("queued", "done", "failed", "cancelled", "partial"),
                                expired_before=moment.timestamp()):
            raise ConfigError(f"Lô {record.id} vừa bắt đầu chạy", fix="xem `sohoa batch show` rồi thử lại")
        return require_batch(registry, record.id), scope


def runs_now(record: BatchRecord, when: str | None = None) -> bool:
    return (when or record.schedule).lower() == "now"
