"""Operations at a glance (``sohoa status``, the web dashboard): what the archive did and what waits, as one
principal may see it.

Figures: pages digitised per night over the last 30 nights, pages/min of recent batch runs, the review backlog
and the standing failures (and documents held at intake) counted by reason code, the last fixity audit
(``sohoa verify``) and the last backup (``sohoa backup``, ``flows.backup_log``). Reasons stay codes here; the
edges word them (``schemas.reasons.code_label``).

**Access rule** (``flows.access``). Every count is document data, so every figure is computed only over the
documents the principal may see; a document above their clearance is left out as if it did not exist (never
counted, never marked hidden):

* pages per night and the document total: catalogued documents with ``Principal.may_see`` on their (corrected)
  classification;
* the review backlog: those documents still ``needs_review`` after ``visible_reasons`` / ``visible_status``
  (a reason naming a hidden document — a possible duplicate — is not counted, and a document flagged only by
  such reasons is not in the backlog);
* failures and held documents: the batch registry's documents through ``flows.batches.visible_statuses`` (a held
  copy at its intake level, a failed one at its catalogued level, else 0);
* a run's pages/min (registry batches, and ``sohoa digitise`` runs from ``flows.run_log``) is listed only when the
  principal may see every document of the run's batch (the rate of a run that spent time on a hidden document is
  derived from it);
* the last fixity audit and backup: documents checked, failed and their problems recounted over the visible
  documents (problems naming no document, and a document no longer catalogued, count as hidden);
* whole-archive totals that cannot be recounted per document (objects and bytes checked or copied, problems
  naming no document, the size of a fixity sample) are given only to a principal cleared for every level; for
  anyone else they are ``None`` whatever the archive holds, so their absence tells nothing.

The principal must be an archivist or above (``ConfigError`` otherwise, exit 4 on the CLI; the web answers 403).
Nights are local (``SOHOA_TIMEZONE``) and run noon to noon, so one night window (``22:00-06:00``) is one night;
a night is named by the date of its evening.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from flows.access import TOP_LEVEL, Levels, Principal, catalog_levels, visible_reasons, visible_status
from flows.backup_log import last_backup
from flows.run_log import logged_runs
from schemas.errors import ConfigError
from schemas.fixity import FixityReport
from schemas.reasons import Reason
from schemas.settings import Settings
from storage.batches import BatchRegistry
from storage.catalog import Catalog
from storage.layout import FIXITY_REPORTS
from storage.objects import ObjectMissing, ObjectStore

NIGHTS = 30
RECENT_RUNS = 10
_NIGHT_TURNS = timedelta(hours=12)  # a night runs from noon to noon (local time)


class NightPages(BaseModel):
    night: str  # the date (ISO) of the night's evening
    pages: int = 0
    documents: int = 0


class ReasonCount(BaseModel):
    code: str  # schemas.reasons.ReasonCode value
    documents: int


class RunRate(BaseModel):
    batch_id: str | None  # None: a ``sohoa digitise`` run (not a registered batch)
    name: str  # the batch folder's name
    state: str
    finished_at: str
    pages: int
    elapsed_s: float
    pages_per_minute: float


class FixityStatus(BaseModel):
    finished_at: str
    sampled: bool = False  # a random sample of documents (sohoa verify --sample N), not the whole archive
    sample: int | None = None  # N: top clearance only (N against the documents a reader sees counts hidden ones)
    documents_checked: int = 0
    documents_failed: int = 0
    problems: int = 0
    problems_by_kind: dict[str, int] = Field(default_factory=dict)
    objects_checked: int | None = None  # whole-archive totals: top clearance only
    bytes_checked: int | None = None


class BackupStatus(BaseModel):
    finished_at: str
    target: str
    problems: int = 0  # documents with an object not copied (+ problems naming no document, top clearance)
    objects_copied: int | None = None  # whole-archive totals: top clearance only
    bytes_copied: int | None = None


class ArchiveStatus(BaseModel):
    """``sohoa status --json`` (the dashboard shows the same)."""

    generated_at: str
    timezone: str
    documents: int = 0  # catalogued documents the principal may see
    nights: list[NightPages] = Field(default_factory=list)  # the last 30 nights, oldest first
    pages_last_nights: int = 0
    review_backlog: int = 0
    review_reasons: list[ReasonCount] = Field(default_factory=list)
    failures: int = 0
    failure_reasons: list[ReasonCount] = Field(default_factory=list)
    held: int = 0
    held_reasons: list[ReasonCount] = Field(default_factory=list)
    runs: list[RunRate] = Field(default_factory=list)  # newest first
    fixity: FixityStatus | None = None
    backup: BackupStatus | None = None


def night_of(moment: datetime, zone: ZoneInfo) -> date:
    """The night (its evening's date) a moment belongs to, in local time."""
    return (moment.astimezone(zone) - _NIGHT_TURNS).date()


def require_viewer(principal: Principal) -> None:
    """Archivists and admins (and the local operator) only: ``ConfigError`` (exit 4) for anyone else."""
    if not principal.has_role("archivist"):
        raise ConfigError(f"Tài khoản {principal.name} không được xem tình hình vận hành",
                          fix="chỉ lưu trữ viên và quản trị viên (hoặc người vận hành, không dùng --as) được xem")


def archive_status(settings: Settings, principal: Principal, *, now: datetime | None = None) -> ArchiveStatus:
    """The figures of the archive as ``principal`` may see them (see the module's access rule)."""
    require_viewer(principal)
    from flows.wiring import build_object_store, open_archive_catalog, open_batch_registry

    now = now or datetime.now(UTC)
    status = ArchiveStatus(generated_at=now.astimezone(UTC).isoformat(timespec="seconds"), timezone=settings.timezone)
    catalog = open_archive_catalog(settings)  # NotFoundError (exit 6) when there is no archive
    try:
        levels = catalog_levels(catalog)
        _nights(status, catalog, principal, now, ZoneInfo(settings.timezone))
        _backlog(status, catalog, principal, levels)
        with open_batch_registry(settings) as registry:
            _failures(status, settings, registry, catalog, principal)
            status.runs = _runs(settings, registry, catalog, principal)
        status.fixity = _fixity(build_object_store(settings), principal, levels)
        status.backup = _backup(settings, principal, levels)
    finally:
        catalog.close()
    return status


def _nights(status: ArchiveStatus, catalog: Catalog, principal: Principal, now: datetime,
            zone: ZoneInfo) -> None:
    last = night_of(now, zone)
    first = last - timedelta(days=NIGHTS - 1)
    nights = {first + timedelta(days=i): NightPages(night=(first + timedelta(days=i)).isoformat())
              for i in range(NIGHTS)}
    since = datetime.combine(first, datetime.min.time(), zone) + _NIGHT_TURNS
    for entry, when in catalog.digitised_since(since.astimezone(UTC).isoformat(timespec="seconds")):
        if not principal.may_see(entry.metadata.get("classification")):
            continue
        try:
            night = nights.get(night_of(datetime.fromisoformat(when), zone))
        except ValueError:
            continue
        if night is not None:
            night.pages += entry.pages
            night.documents += 1
    status.nights = list(nights.values())
    status.pages_last_nights = sum(n.pages for n in status.nights)


def _counts(reason_lists: list[list[Reason]]) -> list[ReasonCount]:
    """Documents per reason code (a document counts once per code), most frequent first."""
    counts = Counter(code for reasons in reason_lists for code in {str(r.code) for r in reasons})
    return [ReasonCount(code=code, documents=n) for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _backlog(status: ArchiveStatus, catalog: Catalog, principal: Principal, levels: Levels) -> None:
    backlog: list[list[Reason]] = []
    for entry in catalog.entries():
        if not principal.may_see(entry.metadata.get("classification")):
            continue
        status.documents += 1
        if entry.status != "needs_review":
            continue
        shown = visible_reasons(principal, entry.review_reasons, levels)
        if visible_status(entry.status, entry.review_reasons, shown) == "needs_review":
            backlog.append(shown)
    status.review_backlog = len(backlog)
    status.review_reasons = _counts(backlog)


def _failures(status: ArchiveStatus, settings: Settings, registry: BatchRegistry, catalog: Catalog,
              principal: Principal) -> None:
    """Standing failures and held documents of every registered batch (their latest outcome), as the batch
    pages count them for the principal (``flows.batches.visible_statuses``)."""
    from flows.batches import DocumentStatus, visible_statuses

    statuses = []
    for record in registry.batches():
        for outcome in registry.outcomes(record.id).values():
            if outcome.held:
                statuses.append(DocumentStatus(source=outcome.source, id=outcome.doc_id, status="quarantined",
                                               held_reason_codes=outcome.held_reasons))
            elif outcome.failure is not None:
                statuses.append(DocumentStatus(source=outcome.source, id=outcome.doc_id, status="failed",
                                               failure_code=outcome.failure))
    shown = visible_statuses(settings, statuses, catalog, principal)
    failed = [[s.failure_code] for s in shown if s.status == "failed" and s.failure_code is not None]
    held = [s.held_reason_codes for s in shown if s.status == "quarantined"]
    status.failures, status.failure_reasons = len(failed), _counts(failed)
    status.held, status.held_reasons = len(held), _counts(held)


def _runs(settings: Settings, registry: BatchRegistry, catalog: Catalog, principal: Principal) -> list[RunRate]:
    """The latest finished runs that OCR'd pages (registry batches and ``sohoa digitise`` runs, ``flows.run_log``),
    newest first; for a restricted principal only those whose documents they may all see."""
    from flows.batches import DocumentStatus, document_statuses, visible_statuses

    candidates: list[tuple[datetime, Callable[[], list[DocumentStatus]], RunRate]] = []
    for record in registry.batches():
        summary = record.summary
        if record.finished_at and summary is not None and summary.pages > 0 and summary.elapsed_s > 0:
            candidates.append((_moment(record.finished_at),
                               lambda r=record: document_statuses(r, registry, catalog),  # type: ignore[misc]
                               RunRate(batch_id=record.id, name=record.name, state=record.state,
                                       finished_at=record.finished_at, pages=summary.pages,
                                       elapsed_s=summary.elapsed_s, pages_per_minute=summary.pages_per_minute)))
    for run in logged_runs(settings.archive_path()):
        if run.pages > 0 and run.elapsed_s > 0:
            state = "failed" if any(d.status == "failed" for d in run.documents) else "done"
            candidates.append((_moment(run.finished_at),
                               lambda r=run: [DocumentStatus(source=d.source, id=d.id, status=d.status)  # type: ignore[misc]
                                              for d in r.documents],
                               RunRate(batch_id=None, name=run.batch, state=state, finished_at=run.finished_at,
                                       pages=run.pages, elapsed_s=run.elapsed_s,
                                       pages_per_minute=run.pages_per_minute)))
    candidates.sort(key=lambda c: c[0], reverse=True)
    runs: list[RunRate] = []
    for _, statuses_of, rate in candidates:
        if len(runs) >= RECENT_RUNS:
            break
        if principal.clearance < TOP_LEVEL:
            statuses = statuses_of()
            if len(visible_statuses(settings, statuses, catalog, principal)) != len(statuses):
                continue
        runs.append(rate)
    return runs


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _visible(principal: Principal, levels: Levels, doc_id: str | None) -> bool:
    """A document named by a report: visible when catalogued at a level within the principal's clearance (the
    top clearance sees every one, catalogued or not)."""
    if principal.clearance >= TOP_LEVEL:
        return True
    level = levels(doc_id) if doc_id else None
    return level is not None and level <= principal.clearance


def last_fixity_report(store: ObjectStore) -> FixityReport | None:
    """The newest fixity report kept in the store (reports are named by their UTC time)."""
    for key in sorted(store.list(FIXITY_REPORTS), reverse=True):
        try:
            return FixityReport.model_validate_json(store.get_bytes(key))
        except (ValueError, ObjectMissing):  # an unreachable store is not "never checked": StoreUnavailable ends it
            continue
    return None


def _fixity(store: ObjectStore, principal: Principal, levels: Levels) -> FixityStatus | None:
    report = last_fixity_report(store)
    if report is None:
        return None
    top = principal.clearance >= TOP_LEVEL
    outcomes = [o for d, o in report.documents.items() if _visible(principal, levels, d)]
    problems = [p for p in report.problems if _visible(principal, levels, p.document) and (p.document or top)]
    return FixityStatus(finished_at=report.finished_at or report.started_at, sampled=report.sample is not None,
                        sample=report.sample if top else None,
                        documents_checked=len(outcomes), documents_failed=outcomes.count("fail"),
                        problems=len(problems), problems_by_kind=dict(Counter(p.kind for p in problems)),
                        objects_checked=report.objects_checked if top else None,
                        bytes_checked=report.bytes_checked if top else None)


def _backup(settings: Settings, principal: Principal, levels: Levels) -> BackupStatus | None:
    entry = last_backup(settings.archive_path())
    if entry is None:
        return None
    top = principal.clearance >= TOP_LEVEL
    problems = sum(1 for d in entry.problem_documents if _visible(principal, levels, d))
    return BackupStatus(finished_at=entry.finished_at, target=entry.target,
                        problems=problems + (entry.store_problems if top else 0),
                        objects_copied=entry.objects_copied if top else None,
                        bytes_copied=entry.bytes_copied if top else None)
