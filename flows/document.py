"""Digitise one document: the pure stages of ``pipeline`` glued to the engine and the stores.

Order of durable effects (each step idempotent): originals and derivatives into the object store, then
``document.json`` (the durable record), then one catalog+index transaction. A document is "done" only after
that transaction; a crash anywhere before it leaves nothing visible, and the next run finishes the work
(from the stored manifest when it exists, so nothing is OCR'd twice).
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import threading
import traceback
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from flows import faults, heap
from flows.inbox import fetched
from flows.intake import approvals_of, held_reasons, quarantine, quarantined, record_copy
from flows.page_ocr import PageOutput, read_page, warning_reasons
from flows.wiring import Services, software_version
from pipeline.intake import decide_intake
from pipeline.load import Limits, LoadedPage, count_pages, document_id, iter_pages
from pipeline.metadata import extract_metadata
from pipeline.pdfa import PdfPageParts, assemble_pdfa
from pipeline.quality import duplicate_reasons, review_reasons
from pipeline.stamp import settle_classification
from schemas.checksums import sha256_file
from schemas.document import BatchInfo, DocumentManifest, DocumentResult, DocumentSource, PageRecord, StoredFile
from schemas.errors import DocumentError, LimitExceededError
from schemas.metadata import DocumentMetadata
from schemas.reasons import Reason, ReasonCode, processing_error, reason
from schemas.settings import Settings
from storage.layout import manifest_key, pdfa_name, prefix_of, seal_key, seal_of
from storage.objects import ObjectStore, StoreUnavailable
from storage.scratch import new_work_dir, renew
from storage.search_index import entry_of

log = logging.getLogger("sohoa.document")





# --- resource limits (issue 18) ---------------------------------------------------------------------------------


def limits_of(settings: Settings) -> Limits:
    """The per-document limits of ``pipeline.load`` from the settings."""
    return Limits(max_page_pixels=settings.max_page_pixels, max_pages=settings.max_document_pages,
                  max_file_bytes=int(settings.max_file_mb * 2**20), decode_timeout_s=settings.decode_timeout_s,
                  max_working_dpi=settings.max_working_dpi)


class MemoryBudget:
    """Bytes of decoded pages in flight in this process (``pipeline.load.PageBudget``), across documents and runs.

    A page is admitted before it is decoded, by its header's dimensions × ``pipeline.load.BYTES_PER_PIXEL``; it
    waits while others hold the budget and fails when it alone would exceed it. With ``SOHOA_MAX_MEMORY_MB`` = M,
    a process holds at most M MB of pages (plus its code, Prefect and the PDF/A being assembled)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int, what: str) -> None:
        if nbytes > self.limit:
            raise LimitExceededError(
                f"{what}: cần khoảng {nbytes / 2**20:.0f} MB bộ nhớ để xử lý, vượt giới hạn "
                f"{self.limit / 2**20:.0f} MB", fix="quét lại ở độ phân giải thấp hơn hoặc tăng SOHOA_MAX_MEMORY_MB")
        with self._cond:
            while self.used + nbytes > self.limit:
                self._cond.wait()
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def release(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        with self._cond:
            self.used = max(0, self.used - nbytes)
            self._cond.notify_all()


_budgets: dict[int, MemoryBudget] = {}
_budgets_lock = threading.Lock()


def memory_budget(settings: Settings) -> MemoryBudget:
    """The process-wide budget for ``settings.max_memory_mb`` (memory is the process's, whatever the archive)."""
    limit = settings.max_memory_mb * 2**20
    with _budgets_lock:
        return _budgets.setdefault(limit, MemoryBudget(limit))


class _SlotAndBytes:
    """The ``PageBudget`` of one document's pages: a page slot (``Services.page_slots``), then its bytes in the
    process's ``MemoryBudget``, both taken before the page is decoded — a page waiting for a slot is not yet in
    memory (neither its decoded image nor its decoder's full-size buffer), so a process holds at most
    ``page_slots`` decoded pages. Both are given back by ``_process_page`` (or by the loader on a failure)."""

    def __init__(self, services: Services) -> None:
        self.slots, self.bytes = services.page_slots, memory_budget(services.settings)

    def acquire(self, nbytes: int, what: str) -> None:
        self.slots.acquire()
        try:
            self.bytes.acquire(nbytes, what)
        except BaseException:
            self.slots.release()
            raise

    def release(self, nbytes: int) -> None:
        self.bytes.release(nbytes)
        self.slots.release()


def _process_page(page: LoadedPage, work: Path, services: Services) -> PageOutput:
    try:
        return read_page(page, work, services)
    finally:
        renew(work)  # the work folder's lease: its owner is alive (``storage.scratch``)
        _SlotAndBytes(services).release(page.admitted)
        services.progress.page_done()
        heap.trim()  # the page's buffers go back to the system before the next page is decoded


def _submit_pages(doc: DocumentSource, work: Path, services: Services) -> list[Future[PageOutput]]:
    """Load pages one by one and hand each to the page pool (bounded: at most ``page_slots`` in memory, each
    admitted before it is decoded)."""
    futures: list[Future[PageOutput]] = []
    heap.unpool_page_buffers()
    try:
        settings = services.settings
        for page in iter_pages(doc, pdf_dpi=settings.pdf_dpi, limits=limits_of(settings),
                               budget=_SlotAndBytes(services)):
            futures.append(services.page_pool.submit(_process_page, page, work, services))
    except BaseException:
        _collect(futures)  # let submitted pages finish before the work folder is removed
        raise
    return futures


def _collect(futures: list[Future[PageOutput]]) -> list[PageOutput]:
    """Wait for every page; the first failure (if any) is raised after all have finished."""
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def _recognise_pages(doc: DocumentSource, work: Path, services: Services) -> list[PageOutput]:
    return _collect(_submit_pages(doc, work, services))


def _original_keys(doc: DocumentSource) -> list[tuple[str, Path]]:
    if doc.kind == "file":
        return [(f"original/{doc.files[0].name}", doc.files[0])]
    return [(f"original/{Path(doc.source).name}/{p.name}", p) for p in doc.files]


def _store_files(doc_id: str, items: list[tuple[str, Path, str, str]], services: Services) -> list[StoredFile]:
    """Put (key, path, role, media type) objects; returns their checksummed records."""
    stored = []
    for key, path, role, media in items:
        sha = sha256_file(path)
        services.store.put_file(prefix_of(doc_id) + key, path, sha)
        faults.hit(services.settings, "store")
        stored.append(StoredFile(key=key, sha256=sha, bytes=path.stat().st_size, role=role, media_type=media))  # type: ignore[arg-type]
    return stored


def _font_provenance(font: Path | None) -> dict[str, str] | None:
    """The font names under seals are matched in (``pipeline.name_match``): file and hash."""
    return None if font is None else {"file": font.name, "sha256": sha256_file(font)}


def _provenance(services: Services, steps: list[dict[str, object]]) -> dict[str, object]:
    import pikepdf

    return {
        "sohoa": software_version(),
        "ocr": services.engine.provenance(),
        "name_font": _font_provenance(services.name_font),
        "preprocessing": {"opencv": cv2.__version__, "numpy": np.__version__, "pages": steps},
        "pdfa": {"pikepdf": pikepdf.__version__, "qpdf": pikepdf.__libqpdf_version__, "conformance": "PDF/A-2b",
                 "image_layer_jpeg_quality": services.settings.image_layer_quality},
        "python": platform.python_version(),
    }


class Quarantined(Exception):
    """A document stopped at intake (``pipeline.intake``): nothing of it is stored but a quarantine record."""

    def __init__(self, reasons: list[Reason], metadata: DocumentMetadata) -> None:
        super().__init__(", ".join(r.code for r in reasons))
        self.reasons = reasons
        self.metadata = metadata


def _build_and_store(
    doc: DocumentSource, doc_id: str, identity: str, batch: str, work: Path, outputs: list[PageOutput],
    services: Services, file_code: str | None, approvals: BatchInfo,
) -> DocumentManifest:
    pages = [o.ocr for o in outputs]
    metadata = extract_metadata(pages)
    metadata.page_count = len(pages)
    metadata.digital_signature = next((str(o.steps["esignature"]["text"]) for o in outputs  # type: ignore[index]
                                       if o.steps.get("esignature")), None)
    stamp_reasons = settle_classification(metadata, [v for o in outputs for v in o.steps.get("secrecy_stamps") or []])  # type: ignore[attr-defined]
    intake = decide_intake(metadata, approvals, without_approval=services.settings.secret_without_approval)
    if intake.outcome == "quarantine":
        raise Quarantined([*([intake.reason] if intake.reason else []), *stamp_reasons], metadata)
    reasons = review_reasons(pages, metadata, min_confidence=services.settings.review_page_confidence,
                             max_doubtful_share=services.settings.review_doubtful_share)
    if intake.outcome == "register_pending" and intake.reason:
        reasons.append(intake.reason)
    reasons += stamp_reasons
    reasons += [reason(ReasonCode.SEAL_NAMES_MATCHED, page=o.ocr.number) for o in outputs if o.steps.get("seal_names")]
    reasons += [reason(ReasonCode.OCR_TIMEOUT, page=o.ocr.number) for o in outputs if o.steps.get("ocr_timeout")]
    reasons += warning_reasons(outputs)  # the engine's own doubts (poor_diacritics, ...)
    reasons += duplicate_reasons(services.catalog.claim_identity(doc_id, doc.source, metadata))  # flag, never merge
    title = metadata.subject or doc.source
    sequence = doc.sequence if file_code else None
    pdf_name = pdfa_name(file_code, sequence)
    assemble_pdfa([PdfPageParts(o.image_jpeg, o.text_pdf, o.ocr.dpi) for o in outputs], work / pdf_name,
                  title=title, progress=lambda _percent: faults.hit(services.settings, "pdfa"))
    items: list[tuple[str, Path, str, str]] = [(k, p, "original", "application/octet-stream")
                                               for k, p in _original_keys(doc)]
    items.append((pdf_name, work / pdf_name, "pdfa", "application/pdf"))
    for o in outputs:
        txt = work / f"p{o.ocr.number:04d}.txt"
        txt.write_text(o.ocr.text, encoding="utf-8")
        items.append((f"pages/{o.ocr.number:04d}.hocr", o.hocr, "hocr", "text/vnd.hocr+html"))
        items.append((f"pages/{o.ocr.number:04d}.txt", txt, "text", "text/plain; charset=utf-8"))
    files = _store_files(doc_id, items, services)
    manifest = DocumentManifest(
        id=doc_id,
        sha256=identity,
        source=doc.source,
        batch=batch,
        status="needs_review" if reasons else "done",
        review_reasons=reasons,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        pages=[PageRecord(number=o.ocr.number, text=o.ocr.text, confidence=round(o.ocr.confidence, 4),
                          width=o.ocr.width, height=o.ocr.height, dpi=o.ocr.dpi, words=len(o.ocr.words),
                          preprocessing=o.steps) for o in outputs],
        metadata=metadata,
        files=files,
        provenance=_provenance(services, [o.steps for o in outputs]),
        file_code=file_code,
        sequence=sequence,
    )
    if intake.outcome in ("register", "register_pending"):  # before the manifest: a re-run after a crash
        record_copy(services.store, doc_id=doc_id, source=doc.origin, batch=batch, metadata=metadata,
                    pages=len(pages), approvals=approvals, approved=intake.outcome == "register")
    store_manifest(manifest, services.store)
    return manifest


def store_manifest(manifest: DocumentManifest, store: ObjectStore) -> None:
    """Seal, then write, the manifest: its SHA-256 goes first (``document.json.sha256``), so a fixity audit
    can tell a changed manifest; the manifest itself is written last and marks the document as stored."""
    body = json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=1).encode("utf-8")
    store.put_bytes(seal_key(manifest.id), seal_of(body))
    store.put_bytes(manifest_key(manifest.id), body)


def load_manifest(doc_id: str, services: Services) -> DocumentManifest | None:
    key = manifest_key(doc_id)
    if not services.store.exists(key):
        return None
    return DocumentManifest.model_validate_json(services.store.get_bytes(key))


def _catalogue(manifest: DocumentManifest, services: Services) -> None:
    """Make a stored document visible: an external search index first (an idempotent upsert), then the catalog
    (with the embedded index, one transaction) — the catalog row marks the document done, so a failure in
    between leaves it to be completed by the next run, never catalogued without being searchable."""
    if services.external_index is not None:
        services.external_index.upsert([entry_of(manifest)])
    faults.arm_index(services.settings, services.catalog.sqlite_connection)
    services.catalog.commit_document(manifest, manifest_key(manifest.id))


def _result(manifest: DocumentManifest, *, skipped: bool) -> DocumentResult:
    return DocumentResult(source=manifest.source, id=manifest.id, status=manifest.status,
                          pages=len(manifest.pages), review_reason_codes=manifest.review_reasons, skipped=skipped)


def _new_work_dir(doc_id: str, services: Services) -> Path:
    """A private folder in the local scratch (``storage.scratch``: leased, a crashed run's leftovers are found)."""
    return new_work_dir(services.work_dir, doc_id)


def prefetch_pages(
    docs: list[DocumentSource], services: Services, *, max_pages: int, stop: threading.Event | None = None
) -> None:
    """Start OCR of new documents' pages before the flow runs (hides the orchestrator's start-up).

    Documents are taken in batch order until ``stop`` is set or ``max_pages`` are started; each one's pages
    are loaded and handed to the page pool here (this call blocks while the pool is full). Only documents that
    are valid and not yet in the archive are started; ``digitise_document`` picks the pending pages up by
    content identity, so no page is ever read twice. Call it from one thread, finished before the flow starts.
    """
    budget = max_pages
    for doc in docs:
        if budget <= 0 or (stop is not None and stop.is_set()):
            return
        if doc.inbox is not None and not doc.files:  # not downloaded yet: its own task fetches it
            continue
        try:
            identity = services.identity_of(doc)
            doc_id = document_id(identity)
            if identity in services.prefetched or services.catalog.get(doc_id) is not None:
                continue
            if load_manifest(doc_id, services) is not None:
                continue
            pages = count_pages(doc, limits_of(services.settings))
            work = _new_work_dir(doc_id, services)
        except Exception:  # any fault of this document (DocumentError, OSError, a parser's): its task reports it
            continue
        submitted: Future[list[Future[PageOutput]]] = Future()
        services.prefetched[identity] = (work, submitted)
        try:
            submitted.set_result(_submit_pages(doc, work, services))
        except BaseException as exc:  # the document task re-raises it and reports the document as failed
            submitted.set_exception(exc)
        budget -= pages


def digitise_document(
    doc: DocumentSource, batch: str, services: Services, file_code: str | None = None
) -> DocumentResult:
    """Digitise one document; never raises for a bad document (it becomes a failed result). A document of an S3
    inbox is downloaded into local scratch first (its size limits checked before), and removed after."""
    if doc.inbox is None or doc.files:
        return _digitise(doc, batch, services, file_code)
    try:
        with fetched(doc, services.settings, limits_of(services.settings)) as local:
            return _digitise(local, batch, services, file_code)
    except Exception as exc:  # the download failed (``_digitise`` never raises)
        services.progress.document_done()
        return _failure(doc, None, exc)


def _failure(doc: DocumentSource, doc_id: str | None, exc: Exception) -> DocumentResult:
    """The failed result of a document that raised ``exc``."""
    if isinstance(exc, DocumentError):
        return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0,
                              failure_code=reason(ReasonCode.DOCUMENT_REJECTED, detail=str(exc),
                                                  error=type(exc).__name__))
    if isinstance(exc, StoreUnavailable):  # nothing was catalogued; what was stored is kept and reused on a re-run
        log.error("document %s: object store unavailable: %s", doc.source, exc)
        return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0,
                              failure_code=reason(ReasonCode.STORE_UNAVAILABLE, source=doc.source, detail=str(exc)))
    log.error("document %s failed:\n%s", doc.source, traceback.format_exc())
    return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0,
                          failure_code=processing_error(doc.source, exc))


def _digitise(doc: DocumentSource, batch: str, services: Services, file_code: str | None) -> DocumentResult:
    doc_id: str | None = None
    work: Path | None = None
    try:
        identity = services.identity_of(doc)
        doc_id = document_id(identity)
        entry = services.catalog.get(doc_id)
        if entry is not None:
            services.progress.document_done(skipped_pages=entry.pages)
            return DocumentResult(source=doc.source, id=doc_id, status=entry.status,  # type: ignore[arg-type]
                                  pages=entry.pages, review_reason_codes=entry.review_reasons, skipped=True)
        stored = load_manifest(doc_id, services)
        if stored is not None:  # stored by an earlier run that stopped before cataloguing
            _catalogue(stored, services)
            services.progress.document_done(skipped_pages=len(stored.pages))
            return _result(stored, skipped=True)
        approvals = approvals_of(doc)
        held = quarantined(services.store, doc_id)
        still_held = held is not None and not held.get("released_at") and decide_intake(
            DocumentMetadata(classification=str(held.get("classification") or "") or None), approvals,
            without_approval=services.settings.secret_without_approval).outcome == "quarantine"
        started = services.prefetched.pop(identity, None)
        if started is not None:  # OCR began while the orchestrator was starting
            work, pending = started
            outputs = _collect(pending.result())
        elif still_held:
            outputs = []
        else:
            count_pages(doc, limits_of(services.settings))
            work = _new_work_dir(doc_id, services)
            outputs = _recognise_pages(doc, work, services)
        if held is not None and still_held:  # stopped at intake by an earlier run; no approval since
            services.progress.document_done()
            return DocumentResult(source=doc.source, id=doc_id, status="quarantined", pages=0,
                                  review_reason_codes=held_reasons(held), skipped=True)
        assert work is not None
        manifest = _build_and_store(doc, doc_id, identity, batch, work, outputs, services, file_code, approvals)
        faults.hit(services.settings, "catalog")
        if held is not None:  # approved since it was stopped: the quarantine record says so
            quarantine(services.store, doc_id=doc_id, source=doc.origin, batch=batch, metadata=manifest.metadata,
                       reasons=held_reasons(held), released=True)
        _catalogue(manifest, services)
        services.progress.document_done()
        return _result(manifest, skipped=False)
    except Quarantined as stop:
        assert doc_id is not None
        quarantine(services.store, doc_id=doc_id, source=doc.origin, batch=batch, metadata=stop.metadata,
                   reasons=stop.reasons)
        services.progress.document_done()
        return DocumentResult(source=doc.source, id=doc_id, status="quarantined", pages=0,
                              review_reason_codes=stop.reasons)
    except Exception as exc:  # a bad document, the store down, any fault: this document fails, the batch goes on
        services.progress.document_done()
        return _failure(doc, doc_id, exc)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
