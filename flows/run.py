"""Run a batch from the command line: OCR starts at once, Prefect's flow as soon as its API is up.

Without ``PREFECT_API_URL`` (embedded mode) sohoa boots Prefect's temporary local API in a subprocess first
thing (``flows.local_api``) and OCRs the first pages while it starts; Prefect itself is imported only after
those pages are on their way.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from flows.document import prefetch_pages
from flows.local_api import LocalPrefectApi
from flows.wiring import services_for
from pipeline.load import discover_documents
from schemas.document import BatchReport
from schemas.settings import Settings


def _configured_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def run_digitise(batch_dir: Path, settings: Settings) -> BatchReport:
    """Digitise ``batch_dir`` through the ``digitise_batch`` flow (one document task per worker, plus one)."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        local_api = None
        if not os.environ.get("PREFECT_API_URL"):  # cheap early check; Prefect profiles are checked below
            timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
            local_api = stack.enter_context(LocalPrefectApi(startup_timeout_s=timeout))
        services = services_for(settings)
        docs = discover_documents(batch_dir.resolve())
        services.progress.start(len(docs), 0)
        prefetch_pages(docs, services, max_pages=settings.workers * settings.prefetch_pages_per_worker)

        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.task_runners import ThreadPoolTaskRunner

        from flows.digitise import digitise_batch, page_total

        services.progress.set_totals(len(docs), page_total(docs))
        if local_api is not None and _configured_api_url() is None:
            local_api.wait_ready()
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: local_api.url}))
        runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=settings.workers + 1)
        flow_run = digitise_batch.with_options(task_runner=runner)  # type: ignore[arg-type]
        report = flow_run(str(batch_dir), settings)
    if report.pages_processed:  # the rate counts the pages OCR'd before the flow started too
        elapsed = time.monotonic() - started
        report.elapsed_s = round(elapsed, 2)
        report.pages_per_minute = round(60.0 * report.pages_processed / elapsed, 2)
    return report
