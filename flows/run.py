"""Run a batch from the command line: OCR starts at once, Prefect's flow as soon as its API is up.

A batch whose documents are all in the archive already is reported without starting Prefect (nothing
to orchestrate). Without ``PREFECT_API_URL`` (embedded mode) sohoa boots Prefect's temporary local API in
a subprocess first thing (``flows.local_api``) and OCRs pages until it is up (``prefetch_pages``, stopped
before the flow starts); Prefect itself is imported only once the first page has entered OCR. That start-up
(``prefect_ready``) is shared by ``sohoa digitise`` and ``sohoa batch add --when now`` (``flows.batches.run_now``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.document import digitise_document, prefetch_pages
from flows.inbox import batch_documents, batch_label, batch_name
from flows.local_api import LocalPrefectApi
from flows.prefect_env import configured_api_url, startup_timeout_s
from flows.wiring import Services, services_for
from pipeline.load import document_id
from schemas.document import BatchReport, DocumentSource
from schemas.settings import Settings

if TYPE_CHECKING:
    from prefect.task_runners import ThreadPoolTaskRunner

FIRST_PAGE_WAIT_S = 10.0  # Prefect's import waits at most this long for the first page to enter OCR


def _already_archived(docs: list[DocumentSource], services: Services) -> bool:
    """True when every document of the batch is already in the archive (a re-run with nothing to do)."""
    for doc in docs:
        if doc.inbox is not None and not doc.files:  # an S3 inbox document is hashed once downloaded, in its task
            return False
        try:
            doc_id = document_id(services.identity_of(doc))
        except Exception:  # unreadable, not a regular file...: its document task reports it
            return False
        if services.catalog.get(doc_id) is None:
            return False
    return True


def _report_without_flow(batch_dir: Path | str, docs: list[DocumentSource], services: Services) -> BatchReport:
    """Nothing to digitise: report every document as skipped without starting the orchestrator."""
    results = [digitise_document(doc, batch_name(batch_dir), services) for doc in docs]
    return BatchReport(batch=batch_label(batch_dir), documents=results, pages_per_minute=0.0, elapsed_s=0.0,
                       pages_processed=0)


def _first_page_first(prefetch: threading.Thread, services: Services) -> None:
    """Wait (at most ``FIRST_PAGE_WAIT_S``) until the first page has entered OCR or nothing is prefetched: Prefect's
    import (a CPU-second of Python holding the interpreter) must not delay the run's first page."""
    deadline = time.monotonic() + FIRST_PAGE_WAIT_S
    while prefetch.is_alive() and time.monotonic() < deadline:
        if services.progress.wait_for("ocr_started", timeout=0.05):
            return


def _preload_flow_engine() -> None:
    """Import now, while the API boots, what a flow run's first call imports (about 0.3 CPU-s: Prefect's flow and
    task engines, the encoder of flow parameters, the flow graph helpers), off the path from the API's start to the
    flow's; a module a Prefect version no longer has is skipped."""
    import importlib

    for name in ("prefect.flow_engine", "prefect.task_engine", "prefect.utilities.visualization", "fastapi.encoders"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


@contextlib.contextmanager
def prefect_ready(settings: Settings, services: Services, docs: list[DocumentSource], *,
                  while_starting: Callable[[], object] | None = None) -> Iterator[ThreadPoolTaskRunner[Any]]:
    """Prefect ready for a flow run in this process (``sohoa digitise``, ``sohoa batch add --when now``); yields the
    run's task runner (``workers + 1`` document tasks at once).

    Without a Prefect server configured, its temporary local API boots in a subprocess (``flows.local_api``, stopped
    when the block ends) while the first pages of ``docs`` are OCR'd (``prefetch_pages``; none for Dask, whose
    workers could not pick them up), and Prefect is imported only once the first page has entered OCR (the run's
    ``ocr_started`` milestone). ``while_starting`` runs meanwhile. Prefetching ends before the block's body, so no
    document starts twice."""
    with contextlib.ExitStack() as stack:
        local_api = None
        if not configured_api_url():  # cheap early check; Prefect profiles are checked below
            local_api = stack.enter_context(LocalPrefectApi(startup_timeout_s=startup_timeout_s()))
        stop_prefetch = threading.Event()
        ahead = settings.workers * settings.prefetch_pages_per_worker if settings.task_runner == "threads" else 0
        prefetch = threading.Thread(
            target=prefetch_pages, name="prefetch", daemon=True,
            args=(docs, services), kwargs={"max_pages": ahead, "stop": stop_prefetch},
        )
        prefetch.start()
        try:
            _first_page_first(prefetch, services)
            from prefect.settings import PREFECT_API_URL, temporary_settings
            from prefect.task_runners import ThreadPoolTaskRunner

            from flows.prefect_env import uses_local_api

            if while_starting is not None:
                while_starting()
            _preload_flow_engine()
            if local_api is not None and uses_local_api():
                local_api.wait_ready()
                stack.enter_context(temporary_settings(updates={PREFECT_API_URL: local_api.url}))
            services.progress.mark("prefect_ready")
        finally:
            stop_prefetch.set()
            prefetch.join()
        yield ThreadPoolTaskRunner(max_workers=settings.workers + 1)


def run_digitise(batch_dir: Path | str, settings: Settings, *, file_code: str | None = None) -> BatchReport:
    """Digitise ``batch_dir`` (a folder, or an S3 inbox prefix ``s3://bucket/prefix/``: ``flows.inbox``) through
    the ``digitise_batch`` flow (one document task per worker, plus one; or on Dask, ``settings.task_runner``)."""
    started = time.monotonic()
    services = services_for(settings)
    docs = batch_documents(batch_dir, settings)
    services.progress.start(len(docs), 0)
    if _already_archived(docs, services):
        return _report_without_flow(batch_dir, docs, services)

    def count_pages() -> None:
        from flows.digitise import page_total

        services.progress.set_totals(len(docs), page_total(docs, settings))

    with prefect_ready(settings, services, docs, while_starting=count_pages) as runner:
        from flows.digitise import digitise_batch

        flow_run = digitise_batch.with_options(task_runner=runner)  # type: ignore[arg-type]
        report = flow_run(str(batch_dir), settings, file_code)
    if report.pages_processed:  # the rate counts the pages OCR'd before the flow started too
        elapsed = time.monotonic() - started
        report.elapsed_s = round(elapsed, 2)
        report.pages_per_minute = round(60.0 * report.pages_processed / elapsed, 2)
    return report
