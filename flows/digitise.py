"""Prefect flow ``digitise_batch``: every document of a batch folder, documents and pages in parallel."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE

from flows.document import digitise_document
from flows.wiring import services_for
from pipeline.load import count_pages, discover_documents, read_batch_info
from schemas.document import BatchReport, DocumentResult, DocumentSource
from schemas.errors import DocumentError
from schemas.settings import Settings


@task(name="digitise_document", cache_policy=NONE, retries=0)
def digitise_document_task(
    doc: DocumentSource, batch: str, settings: Settings, file_code: str | None = None
) -> DocumentResult:
    return digitise_document(doc, batch, services_for(settings), file_code)


def page_total(docs: list[DocumentSource]) -> int:
    total = 0
    for doc in docs:
        try:
            total += count_pages(doc)
        except DocumentError:
            continue
    return total


@flow(name="digitise_batch", log_prints=False, validate_parameters=False)
def digitise_batch(batch_dir: str, settings: Settings | None = None, file_code: str | None = None) -> BatchReport:
    """Digitise a batch folder into the archive named by ``settings`` (default: from the environment).

    ``file_code`` (mã hồ sơ; default: ``batch.toml``'s) names the PDF/As ``<mã hồ sơ>.<số thứ tự>.pdf``.
    """
    settings = settings or Settings()
    services = services_for(settings)
    batch = Path(batch_dir).resolve()
    docs = discover_documents(batch)
    file_code = file_code or read_batch_info(batch).file_code
    if services.progress.pages_total == 0:  # the CLI counted them already; a deployment run has not
        services.progress.set_totals(len(docs), page_total(docs))
    started = time.monotonic()
    futures = [digitise_document_task.submit(doc, batch.name, settings, file_code) for doc in docs]
    results = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    processed = sum(r.pages for r in results if not r.skipped and r.status != "failed")
    return BatchReport(
        batch=str(batch),
        documents=results,
        pages_per_minute=round(60.0 * processed / elapsed, 2) if processed and elapsed > 0 else 0.0,
        elapsed_s=round(elapsed, 2),
        pages_processed=processed,
    )
