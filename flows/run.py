"""Run a batch from the command line: start OCR at once, Prefect's flow as soon as its API is up.

Prefect is imported only after the first pages are on their way: importing it and booting its temporary local
API (when no ``PREFECT_API_URL`` is set) takes seconds that the OCR workers would otherwise sit idle.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from flows.document import prefetch_pages
from flows.wiring import services_for
from pipeline.load import discover_documents
from schemas.document import BatchReport
from schemas.settings import Settings


def _boot_local_api() -> None:
    from prefect.server.api.server import SubprocessASGIServer  # a heavy import: kept off the main thread

    SubprocessASGIServer().start()


def run_digitise(batch_dir: Path, settings: Settings) -> BatchReport:
    """Digitise ``batch_dir`` through the ``digitise_batch`` flow (one document task per worker, plus one)."""
    services = services_for(settings)
    docs = discover_documents(batch_dir.resolve())
    services.progress.start(len(docs), 0)
    started = time.monotonic()
    prefetch_pages(docs, services, max_pages=settings.workers * settings.prefetch_pages_per_worker)

    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.digitise import digitise_batch, page_total
    from flows.prefect_env import uses_local_api

    services.progress.set_totals(len(docs), page_total(docs))
    if uses_local_api():
        api = threading.Thread(target=_boot_local_api, name="prefect-local-api", daemon=True)
        api.start()
        api.join()  # the flow then finds the API running
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=settings.workers + 1)
    flow_run = digitise_batch.with_options(task_runner=runner)  # type: ignore[arg-type]
    report = flow_run(str(batch_dir), settings)
    if report.pages_processed:  # the rate counts the pages OCR'd before the flow started too
        elapsed = time.monotonic() - started
        report.elapsed_s = round(elapsed, 2)
        report.pages_per_minute = round(60.0 * report.pages_processed / elapsed, 2)
    return report
