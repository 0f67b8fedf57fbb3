"""Prefect flow ``digitise_batch``: every document of a batch folder, documents and pages in parallel.

Where the document tasks run is a setting (``SOHOA_TASK_RUNNER``, see ``document_tasks``): threads of the flow's
process sharing one OCR page pool (default), or a Dask cluster whose worker processes — on this machine or others —
each build their own services from the settings and digitise one document at a time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture

from flows.document import _catalogue, digitise_document, limits_of, load_manifest
from flows.inbox import batch_documents, batch_info, batch_label, batch_name
from flows.prefect_env import quiet_dask_logging
from flows.wiring import Services, services_for
from pipeline.load import Limits, count_pages
from schemas.document import BatchReport, DocumentResult, DocumentSource
from schemas.reasons import ReasonCode, processing_error, reason
from schemas.settings import Settings
from storage.search_sqlite import worth_compacting

log = logging.getLogger(__name__)

# (document, batch name, mã hồ sơ) -> the task's future
SubmitDocument = Callable[[DocumentSource, str, str | None], PrefectFuture[DocumentResult]]


@task(name="digitise_document", cache_policy=NONE, retries=0)
def digitise_document_task(
    doc: DocumentSource, batch: str, settings: Settings, file_code: str | None = None
) -> DocumentResult:
    return digitise_document(doc, batch, services_for(settings), file_code)


def page_total(docs: list[DocumentSource], settings: Settings | None = None) -> int:
    """Pages of the valid documents, for progress: read from headers only, under the same limits as the run
    (nothing is decoded; a document that breaks a limit or any parser counts 0 and fails in its own task)."""
    limits = limits_of(settings) if settings is not None else Limits()
    total = 0
    for doc in docs:
        if doc.inbox is not None and not doc.files:  # an S3 inbox document, not downloaded: what its listing tells
            total += len(doc.remote) if doc.kind == "folder" else 1  # (a PDF or TIFF counts one page here)
            continue
        try:
            total += count_pages(doc, limits)
        except Exception:
            continue
    return total


# --- where document tasks run -----------------------------------------------------------------------------------


def dask_cluster_kwargs(settings: Settings) -> dict[str, Any]:
    """The LocalCluster of a Dask run without ``dask_address``: one single-threaded worker process per OCR worker,
    listening on 127.0.0.1 only, no dashboard."""
    return {"n_workers": settings.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
            "host": "127.0.0.1"}


def dask_task_runner(settings: Settings) -> Any:
    """A ``prefect_dask.DaskTaskRunner`` for ``settings``: the scheduler at ``dask_address`` (its workers may run on
    other machines), else a LocalCluster started when the first task is submitted and stopped with the runner."""
    quiet_dask_logging()
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs=dask_cluster_kwargs(settings))


@contextlib.contextmanager
def document_tasks(settings: Settings) -> Iterator[SubmitDocument]:
    """Inside a flow: a function submitting ``digitise_document`` tasks where ``settings.task_runner`` says.

    ``threads``: the flow's own task runner (documents in this process, pages in its shared OCR pool).
    ``dask``: a Dask task runner entered here (so scheduled deployments pick it from the environment at run time,
    too) and left when the block ends; every task gets the settings with ``workers=1``, so a Dask worker reads one
    page at a time and the cluster's worker threads (one per core) are the parallelism. A Dask worker process builds
    its own services (object store, catalog, engine) from the settings on its first task (``services_for``).
    """
    if settings.task_runner != "dask":
        yield lambda doc, batch, file_code: digitise_document_task.submit(doc, batch, settings, file_code)
        return
    per_task = settings.model_copy(update={"workers": 1})
    with dask_task_runner(settings) as runner:
        def submit(doc: DocumentSource, batch: str, file_code: str | None) -> PrefectFuture[DocumentResult]:
            parameters = {"doc": doc, "batch": batch, "settings": per_task, "file_code": file_code}
            future: PrefectFuture[DocumentResult] = runner.submit(digitise_document_task, parameters)
            return future

        yield submit


def received(result: DocumentResult, services: Services) -> DocumentResult:
    """A document a Dask worker digitised, as this process records it.

    It counts in this process's progress (the worker counted its pages in its own). When the worker's catalog is
    not this one (a worker on another machine: same object store, its own disk) the document is catalogued here
    from its stored manifest; a document this process cannot find in its object store is failed, with the reason
    (the machines do not share the store)."""
    if not result.skipped:
        for _ in range(result.pages):
            services.progress.page_done()
    services.progress.document_done(skipped_pages=result.pages if result.skipped else 0)
    if result.id is None or result.status == "failed" or services.catalog.get(result.id) is not None:
        return result
    manifest = load_manifest(result.id, services)
    if manifest is None:
        return result.model_copy(update={
            "status": "failed", "pages": 0,
            "failure_code": reason(ReasonCode.NOT_IN_SHARED_STORE, source=result.source)})
    _catalogue(manifest, services)
    return result


def task_result(future: PrefectFuture[DocumentResult], doc: DocumentSource, settings: Settings) -> DocumentResult:
    """The task's result; a task that broke (not a bad document: ``digitise_document`` never raises for one, but a
    worker that cannot build its services does) becomes a failed document, and the batch goes on."""
    try:
        result = future.result()
    except Exception as exc:
        return DocumentResult(source=doc.source, id=None, status="failed", pages=0,
                              failure_code=processing_error(doc.source, exc))
    return received(result, services_for(settings)) if settings.task_runner == "dask" else result


def compact_search_index(services: Services, added: int) -> None:
    """Merge the embedded search index's segments after a run that added ``added`` documents, when worth it
    (``search_sqlite.worth_compacting``: searches of a merged index are faster; a merge rewrites the index). An
    optimisation: a failure is logged and the run's documents stay (the next run merges)."""
    if services.external_index is not None or not worth_compacting(services.catalog.count(), added):
        return
    started = time.monotonic()
    try:
        steps = services.catalog.compact_search()
    except Exception as exc:  # the documents are committed; only the merge is lost
        log.warning("search index merge failed: %s: %s", type(exc).__name__, exc)
        return
    log.info("search index merged in %.2f s (%d steps)", time.monotonic() - started, steps)


@flow(name="digitise_batch", log_prints=False, validate_parameters=False)
def digitise_batch(batch_dir: str, settings: Settings | None = None, file_code: str | None = None) -> BatchReport:
    """Digitise a batch folder, or an S3 inbox prefix ``s3://bucket/prefix/`` (``flows.inbox``), into the archive
    named by ``settings`` (default: from the environment).

    ``file_code`` (mã hồ sơ; default: ``batch.toml``'s) names the PDF/As ``<mã hồ sơ>.<số thứ tự>.pdf``.
    """
    settings = settings or Settings()
    services = services_for(settings)
    services.progress.mark("flow_started")
    docs = batch_documents(batch_dir, settings)  # a folder, or an S3 inbox prefix (``flows.inbox``)
    file_code = file_code or batch_info(batch_dir, settings).file_code
    name = batch_name(batch_dir)
    if services.progress.pages_total == 0:  # the CLI counted them already; a deployment run has not
        services.progress.set_totals(len(docs), page_total(docs, settings))
    started = time.monotonic()
    with document_tasks(settings) as submit:
        futures = [submit(doc, name, file_code) for doc in docs]
        results = [task_result(f, doc, settings) for f, doc in zip(futures, docs, strict=True)]
    processed = sum(r.pages for r in results if not r.skipped and r.status != "failed")
    compact_search_index(services, sum(1 for r in results if not r.skipped and r.status != "failed"))
    elapsed = time.monotonic() - started
    return BatchReport(
        batch=batch_label(batch_dir),
        documents=results,
        pages_per_minute=round(60.0 * processed / elapsed, 2) if processed and elapsed > 0 else 0.0,
        elapsed_s=round(elapsed, 2),
        pages_processed=processed,
    )
