"""Run a batch from the command line: OCR starts at once, Prefect's flow as soon as its API is up.

A batch whose documents are all in the archive already is reported without starting Prefect (nothing
to orchestrate). Without ``PREFECT_API_URL`` (embedded mode) sohoa boots Prefect's temporary local API in
a subprocess first thing (``flows.local_api``) and OCRs pages until it is up (``prefetch_pages``, stopped
before the flow starts); Prefect itself is imported only after those pages are on their way.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from flows.document import digitise_document, prefetch_pages
from flows.local_api import LocalPrefectApi
from flows.wiring import Services, services_for
from pipeline.load import discover_documents, document_id
from schemas.document import BatchReport, DocumentSource
from schemas.settings import Settings


def _already_archived(docs: list[DocumentSource], services: Services) -> bool:
    """True when every document of the batch is already in the archive (a re-run with nothing to do)."""
    for doc in docs:
        try:
            doc_id = document_id(services.identity_of(doc))
        except Exception:  # unreadable, not a regular file...: its document task reports it
            return False
        if services.catalog.get(doc_id) is None:
            return False
    return True


def _report_without_flow(batch_dir: Path, docs: list[DocumentSource], services: Services) -> BatchReport:
    """Nothing to digitise: report every document as skipped without starting the orchestrator."""
    results = [digitise_document(doc, batch_dir.resolve().name, services) for doc in docs]
    return BatchReport(batch=str(batch_dir.resolve()), documents=results, pages_per_minute=0.0, elapsed_s=0.0,
                       pages_processed=0)


def run_digitise(batch_dir: Path, settings: Settings, *, file_code: str | None = None) -> BatchReport:
    """Digitise ``batch_dir`` through the ``digitise_batch`` flow (one document task per worker, plus one; or on
    Dask, ``settings.task_runner``)."""
    started = time.monotonic()
    services = services_for(settings)
    docs = discover_documents(batch_dir.resolve())
    services.progress.start(len(docs), 0)
    if _already_archived(docs, services):
        return _report_without_flow(batch_dir, docs, services)
    with contextlib.ExitStack() as stack:
        local_api = None
        if not os.environ.get("PREFECT_API_URL"):  # cheap early check; Prefect profiles are checked below
            timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
            local_api = stack.enter_context(LocalPrefectApi(startup_timeout_s=timeout))
        stop_prefetch = threading.Event()
        # pages OCR'd ahead live in this process: Dask workers could not pick them up, so none are OCR'd then
        ahead = settings.workers * settings.prefetch_pages_per_worker if settings.task_runner == "threads" else 0
        prefetch = threading.Thread(
            target=prefetch_pages, name="prefetch", daemon=True,
            args=(docs, services), kwargs={"max_pages": ahead, "stop": stop_prefetch},
        )
        prefetch.start()

        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.task_runners import ThreadPoolTaskRunner

        from flows.digitise import digitise_batch, page_total
        from flows.prefect_env import uses_local_api

        services.progress.set_totals(len(docs), page_total(docs, settings))
        if local_api is not None and uses_local_api():
            local_api.wait_ready()
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: local_api.url}))
        stop_prefetch.set()
        prefetch.join()  # no document is started twice: prefetching ends before the first task begins
        runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=settings.workers + 1)
        flow_run = digitise_batch.with_options(task_runner=runner)  # type: ignore[arg-type]
        report = flow_run(str(batch_dir), settings, file_code)
    if report.pages_processed:  # the rate counts the pages OCR'd before the flow started too
        elapsed = time.monotonic() - started
        report.elapsed_s = round(elapsed, 2)
        report.pages_per_minute = round(60.0 * report.pages_processed / elapsed, 2)
    return report
