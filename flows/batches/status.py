"""What the registry says of a batch: its documents' statuses (from the catalog and the registry), the counts of a
run, the ``--json`` view of a batch and the labels people read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from flows.batches.schedule import lease_expired
from pipeline.load import discover_documents
from schemas.errors import NotFoundError, SohoaError
from schemas.reasons import StoredReason, describe, describe_all
from storage.batches import BatchRecord, BatchRegistry, BatchSummary
from storage.catalog import Catalog

StopReason = Literal["window", "cancel"]

STATE_LABELS: dict[str, str] = {"queued": "chờ chạy", "running": "đang chạy", "done": "xong", "failed": "có lỗi",
                                "cancelled": "đã hủy", "partial": "dở dang"}
DOC_LABELS = {"done": "xong", "needs_review": "cần xem lại", "failed": "lỗi", "pending": "chưa xử lý",
              "quarantined": "bị giữ lại (cách ly)"}


def require_batch(registry: BatchRegistry, batch_id: str) -> BatchRecord:
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
    failure_code: StoredReason | None = None  # failed: why
    held_reason_codes: list[StoredReason] = Field(default_factory=list)  # quarantined: why it was held
    review_reason_codes: list[StoredReason] = Field(default_factory=list)  # needs_review: why

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error(self) -> str | None:
        """Why it failed or was held, in Vietnamese (the ``--json`` contract, next to the codes)."""
        if self.failure_code is not None:
            return describe(self.failure_code)
        return "; ".join(describe_all(self.held_reason_codes)) or None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_reasons(self) -> list[str]:
        """Why it needs review, in Vietnamese (the ``--json`` contract, next to the codes)."""
        return describe_all(self.review_reason_codes)


def document_statuses(record: BatchRecord, registry: BatchRegistry, catalog: Catalog) -> list[DocumentStatus]:
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
        if entry is not None and (outcome is None or not (outcome.held or outcome.failure)):
            statuses.append(DocumentStatus(source=source, id=entry.id, status=entry.status, pages=entry.pages,
                                           review_reason_codes=entry.review_reasons))
        elif outcome is not None and outcome.held:
            statuses.append(DocumentStatus(source=source, id=outcome.doc_id, status="quarantined",
                                           held_reason_codes=outcome.held_reasons))
        elif outcome is not None and outcome.failure is not None:
            statuses.append(DocumentStatus(source=source, id=outcome.doc_id, status="failed",
                                           failure_code=outcome.failure))
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
    data["interrupted"] = lease_expired(record)  # left running by workers that are gone (its lease ran out)
    return data

