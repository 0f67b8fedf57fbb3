"""Digitise one document: the pure stages of ``pipeline`` glued to the engine and the stores.

Order of durable effects (each step idempotent): originals and derivatives into the object store, then
``document.json`` (the durable record), then one catalog+index transaction. A document is "done" only after
that transaction; a crash anywhere before it leaves nothing visible, and the next run finishes the work
(from the stored manifest when it exists, so nothing is OCR'd twice).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from flows import faults
from flows.cutouts import read_cut_outs
from flows.intake import approvals_of, quarantine, quarantined, record_copy
from flows.stamps import read_stamps
from flows.wiring import Services, software_version
from ocr_models.hocr import page_from_hocr
from ocr_models.tesseract import OcrTimeout
from pipeline.intake import decide_intake
from pipeline.load import Limits, LoadedPage, count_pages, document_id, iter_pages
from pipeline.metadata import extract_metadata
from pipeline.pdfa import PdfPageParts, assemble_pdfa
from pipeline.preprocess import preprocess_page
from pipeline.quality import duplicate_reasons, review_reasons
from pipeline.reading_order import order_page_text
from pipeline.reread import doubtful_lines, merge_rereads
from pipeline.seal import find_seal_rings, seal_text_bands
from pipeline.seal_read import lines_to_reread, merge_seal_line, settle_name
from pipeline.stamp import settle_classification
from schemas.checksums import sha256_file
from schemas.document import BatchInfo, DocumentManifest, DocumentResult, DocumentSource, PageRecord, StoredFile
from schemas.errors import DocumentError, LimitExceededError
from schemas.metadata import DocumentMetadata
from schemas.ocr import OcrPage
from schemas.settings import Settings
from storage.layout import manifest_key, pdfa_name, prefix_of, seal_key, seal_of
from storage.objects import ObjectStore, StoreUnavailable
from storage.search_index import entry_of

log = logging.getLogger("sohoa.document")



@dataclass(frozen=True)
class PageOutput:
    ocr: OcrPage
    steps: dict[str, object]
    image_jpeg: Path
    text_pdf: Path
    hocr: Path


# A first OCR pass this poor, or read from sideways lines, may be a page scanned upside down or at 90°:
# then tesseract is asked for the page's orientation (one quick extra run, only for such pages).
UNREADABLE_MIN_WORDS = 15
UNREADABLE_CONFIDENCE = 0.60
SIDEWAYS_SHARE = 0.5  # share of words (3+ characters) whose box is taller than wide
SEAL_NAME_REASON = "tên bị dấu đen che, đã đọc bằng đối chiếu danh sách họ tên: cần soát lại"
OCR_TIMEOUT_REASON = "nhận dạng chữ quá thời gian cho phép, trang chỉ được lưu dạng ảnh (chưa có lớp chữ)"
_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


# --- resource limits (issue 18) ---------------------------------------------------------------------------------


def limits_of(settings: Settings) -> Limits:
    """The per-document limits of ``pipeline.load`` from the settings."""
    return Limits(max_page_pixels=settings.max_page_pixels, max_pages=settings.max_document_pages,
                  max_file_bytes=int(settings.max_file_mb * 2**20), decode_timeout_s=settings.decode_timeout_s)


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


def _image_only(page: LoadedPage, image: np.ndarray, dpi: int, stem: Path, jpeg: Path, cause: str) -> PageOutput:
    """A page whose OCR timed out: kept as its image with an empty text layer and hOCR (as OCRmyPDF does)."""
    import pikepdf

    height, width = image.shape[:2]
    text_pdf, hocr = stem.with_suffix(".pdf"), stem.with_suffix(".hocr")
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(width * 72 / dpi, height * 72 / dpi))
        pdf.save(text_pdf)
    hocr.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title></title>'
        f'</head><body><div class="ocr_page" id="page_1" title="bbox 0 0 {width} {height}"></div></body></html>\n',
        encoding="utf-8")
    log.warning("page %d: %s", page.number, cause)
    ocr = OcrPage(number=page.number, text="", words=[], confidence=0.0, width=width, height=height, dpi=dpi)
    return PageOutput(ocr, {"ocr_timeout": 1}, jpeg, text_pdf, hocr)


def _ocr_pass(
    image: np.ndarray, page: LoadedPage, work: Path, services: Services, tag: str = ""
) -> tuple[PageOutput, Path]:
    """Preprocess ``image``, write its OCR image and page layer (JPEG), OCR it once, text in reading order.

    Returns the page output and the OCR image (the caller deletes it).
    """
    prep = preprocess_page(image, page.dpi)
    stem = work / f"p{page.number:04d}{tag}"
    ocr_png = stem.with_suffix(".pgm")  # uncompressed: no encode cost, deleted after OCR
    jpeg = work / f"p{page.number:04d}{tag}.layer.jpg"
    cv2.imwrite(str(ocr_png), prep.ocr_image)
    quality = services.settings.image_layer_quality
    cv2.imwrite(str(jpeg), prep.display_image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    faults.hit(services.settings, "ocr")
    try:
        out = services.engine.recognize(ocr_png, dpi=prep.dpi, out_base=stem)
    except OcrTimeout as exc:
        output = _image_only(page, prep.ocr_image, prep.dpi, stem, jpeg, str(exc))
        if page.number == 1:  # page 1 unread: its secrecy mark is unknown, so the document is held (fail closed)
            output.steps["secrecy_stamps"] = [{
                "kind": "unreadable", "level": "Tuyệt mật", "page": 1, "exact": False, "confidence": 0.0,
                "box": [], "readings": [], "rule": "trang 1 không nhận dạng được (quá thời gian): chưa biết độ mật"}]
        return output, ocr_png
    ocr = page_from_hocr(out.hocr.read_text(encoding="utf-8"), number=page.number, dpi=prep.dpi)
    ocr, reread = _reread_doubtful(ocr, prep.ocr_image, stem, services)
    ocr, sealed = _read_under_seals(ocr, prep.ocr_image, stem, services)
    ocr = ocr.model_copy(update={"text": order_page_text(ocr)})  # logical order; words keep engine order
    stamps = read_stamps(ocr, prep.display_image, page.number == 1, stem, services)  # secrecy stamps (issue 17)
    return PageOutput(ocr, {**prep.steps, **reread, **sealed, **stamps}, jpeg, out.text_pdf, out.hocr), ocr_png


def _reread_doubtful(ocr: OcrPage, image: np.ndarray, stem: Path, services: Services) -> tuple[OcrPage, dict[str, int]]:
    """Read again, one by one, the lines the page pass was unsure of (``pipeline.reread``); keep what is better."""
    lines = doubtful_lines(ocr) if services.settings.ocr_reread else []
    if not lines:
        return ocr, {}
    crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in (line.box for line in lines)]
    rereads = read_cut_outs(crops, ocr.dpi, stem, "line", services)
    merged, changed = merge_rereads(ocr, lines, rereads)
    return merged, {"reread_lines": len(lines), "reread_changed": changed}


def _read_under_seals(
    ocr: OcrPage, image: np.ndarray, stem: Path, services: Services
) -> tuple[OcrPage, dict[str, int]]:
    """Read again, cleaned of the seal, the lines a black seal covers that the page pass missed or doubted; a
    signer's name fused with the seal is settled among known names (``pipeline.seal``, ``pipeline.seal_read``)."""
    if not services.settings.ocr_seal_lines:
        return ocr, {}
    rings = find_seal_rings(image, ocr.dpi)
    if not rings:
        return ocr, {}
    lines = lines_to_reread(ocr, [(ring, band) for ring in rings for band in seal_text_bands(image, ring, ocr.dpi)])
    steps = {"seal_rings": len(rings), "seal_lines": len(lines)}
    if not lines:
        return ocr, steps
    readings = read_cut_outs([line.band.image for line in lines], ocr.dpi, stem, "seal", services)
    changed = named = 0
    for line, words in zip(lines, readings, strict=True):
        name = settle_name(words, line, services.name_font) if services.name_font else None
        merged = merge_seal_line(ocr, line, name or words, name=name is not None)
        if merged is not None:
            ocr, changed, named = merged, changed + 1, named + (name is not None)
    return ocr, {**steps, "seal_lines_changed": changed, "seal_names": named}


def _looks_wrong(ocr: OcrPage) -> bool:
    """Almost nothing read, read with low confidence, or read along vertical lines (a page on its side)."""
    if len(ocr.words) < UNREADABLE_MIN_WORDS or ocr.confidence < UNREADABLE_CONFIDENCE:
        return True
    long_words = [w.box for w in ocr.words if len(w.text) >= 3]
    tall = sum(b[3] - b[1] > b[2] - b[0] for b in long_words)
    return bool(long_words) and tall > SIDEWAYS_SHARE * len(long_words)


def _evidence(ocr: OcrPage) -> float:
    """Sum of word confidences: more words read with more confidence is the better reading."""
    return sum(w.confidence for w in ocr.words)


def _upright_pass(first: PageOutput, ocr_image: Path, page: LoadedPage, work: Path, services: Services) -> PageOutput:
    """Re-read a poorly read page turned upright when tesseract says it is rotated; keep the better reading."""
    angle = services.engine.detect_orientation(ocr_image)
    if angle not in _ROTATIONS:
        return first
    turned, turned_image = _ocr_pass(cv2.rotate(page.image, _ROTATIONS[angle]), page, work, services, tag="r")
    turned_image.unlink(missing_ok=True)
    if _looks_wrong(turned.ocr) and _evidence(turned.ocr) <= _evidence(first.ocr):
        return first
    turned.steps["rotated_deg"] = angle
    return turned


def _process_page(page: LoadedPage, work: Path, services: Services) -> PageOutput:
    started = time.monotonic()
    try:
        result, ocr_image = _ocr_pass(page.image, page, work, services)
        if _looks_wrong(result.ocr) and not result.steps.get("ocr_timeout"):
            result = _upright_pass(result, ocr_image, page, work, services)
        ocr_image.unlink(missing_ok=True)
        result.steps["seconds"] = round(time.monotonic() - started, 2)  # cleaning + OCR + re-reads, wall clock
        return result
    finally:
        memory_budget(services.settings).release(page.admitted)
        services.page_slots.release()
        services.progress.page_done()


def _submit_pages(doc: DocumentSource, work: Path, services: Services) -> list[Future[PageOutput]]:
    """Load pages one by one and hand each to the page pool (bounded: at most ``page_slots`` in memory)."""
    futures: list[Future[PageOutput]] = []
    try:
        settings = services.settings
        for page in iter_pages(doc, pdf_dpi=settings.pdf_dpi, limits=limits_of(settings),
                               budget=memory_budget(settings)):
            services.page_slots.acquire()
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

    def __init__(self, reason: str, metadata: DocumentMetadata) -> None:
        super().__init__(reason)
        self.reason = reason
        self.metadata = metadata


def _build_and_store(
    doc: DocumentSource, doc_id: str, identity: str, batch: str, work: Path, outputs: list[PageOutput],
    services: Services, file_code: str | None, approvals: BatchInfo,
) -> DocumentManifest:
    pages = [o.ocr for o in outputs]
    metadata = extract_metadata(pages)
    metadata.page_count = len(pages)
    stamp_reasons = settle_classification(metadata, [v for o in outputs for v in o.steps.get("secrecy_stamps") or []])  # type: ignore[attr-defined]
    intake = decide_intake(metadata, approvals, without_approval=services.settings.secret_without_approval)
    if intake.outcome == "quarantine":
        raise Quarantined("; ".join([intake.reason, *stamp_reasons]), metadata)
    reasons = review_reasons(pages, metadata, min_confidence=services.settings.review_page_confidence,
                             max_doubtful_share=services.settings.review_doubtful_share)
    if intake.outcome == "register_pending":
        reasons.append(intake.reason)
    reasons += stamp_reasons
    reasons += [f"trang {o.ocr.number}: {SEAL_NAME_REASON}" for o in outputs if o.steps.get("seal_names")]
    reasons += [f"trang {o.ocr.number}: {OCR_TIMEOUT_REASON}" for o in outputs if o.steps.get("ocr_timeout")]
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
        record_copy(services.store, doc_id=doc_id, source=doc.source, batch=batch, metadata=metadata,
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
    faults.arm_index(services.settings, services.catalog._conn)
    services.catalog.commit_document(manifest, manifest_key(manifest.id))


def _result(manifest: DocumentManifest, *, skipped: bool) -> DocumentResult:
    return DocumentResult(source=manifest.source, id=manifest.id, status=manifest.status,
                          pages=len(manifest.pages), review_reasons=manifest.review_reasons, skipped=skipped)


def _new_work_dir(doc_id: str, services: Services) -> Path:
    """A private scratch folder; its name carries our process id so a crashed run's leftovers can be found."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    work = services.work_dir / f"{doc_id}.{os.getpid()}.{stamp}"
    work.mkdir(parents=True)
    return work


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
    """Digitise one document; never raises for a bad document (it becomes a failed result)."""
    doc_id: str | None = None
    work: Path | None = None
    try:
        identity = services.identity_of(doc)
        doc_id = document_id(identity)
        entry = services.catalog.get(doc_id)
        if entry is not None:
            services.progress.document_done(skipped_pages=entry.pages)
            return DocumentResult(source=doc.source, id=doc_id, status=entry.status,  # type: ignore[arg-type]
                                  pages=entry.pages, review_reasons=entry.review_reasons, skipped=True)
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
                                  review_reasons=[str(held.get("reason") or "")], skipped=True)
        assert work is not None
        manifest = _build_and_store(doc, doc_id, identity, batch, work, outputs, services, file_code, approvals)
        faults.hit(services.settings, "catalog")
        if held is not None:  # approved since it was stopped: the quarantine record says so
            quarantine(services.store, doc_id=doc_id, source=doc.source, batch=batch, metadata=manifest.metadata,
                       reason=str(held.get("reason") or ""), released=True)
        _catalogue(manifest, services)
        services.progress.document_done()
        return _result(manifest, skipped=False)
    except Quarantined as stop:
        assert doc_id is not None
        quarantine(services.store, doc_id=doc_id, source=doc.source, batch=batch, metadata=stop.metadata,
                   reason=stop.reason)
        services.progress.document_done()
        return DocumentResult(source=doc.source, id=doc_id, status="quarantined", pages=0,
                              review_reasons=[stop.reason])
    except DocumentError as exc:
        services.progress.document_done()
        return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0, error=str(exc))
    except StoreUnavailable as exc:  # nothing was catalogued; what was stored is kept and reused on a re-run
        log.error("document %s: object store unavailable: %s", doc.source, exc)
        services.progress.document_done()
        return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0,
                              error=f"{doc.source}: chưa lưu được vào kho ({exc}) — chạy lại lô khi kho "
                                    "hoạt động trở lại; phần đã lưu được giữ nguyên")
    except Exception as exc:  # an unexpected fault fails this document only; the batch goes on
        log.error("document %s failed:\n%s", doc.source, traceback.format_exc())
        services.progress.document_done()
        return DocumentResult(source=doc.source, id=doc_id, status="failed", pages=0,
                              error=f"lỗi xử lý {doc.source}: {type(exc).__name__}: {exc}")
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
