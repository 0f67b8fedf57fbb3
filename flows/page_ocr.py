"""Read one page: the page-OCR strategy of ``flows.document``.

A page is cleaned (``pipeline.preprocess``), written as the OCR image and the page layer (JPEG), and read once by
the engine (``ocr_models.engine.OcrEngine``). Then, on the page read: the lines it was unsure of are read again one
by one (``pipeline.reread``), the lines under black seals are read again cleaned (``pipeline.seal_read``), the text
is put in logical reading order, and a first page's secrecy stamps are read (``flows.stamps``). A page read too
poorly, or along vertical lines, is asked for its orientation and read again turned upright; the better reading
is kept. A page whose OCR runs over its time limit is kept as its image with an empty text layer.

The stored hOCR is written from the finished ``OcrPage`` (``ocr_models.hocr.hocr_from_page``); the text-only PDF
layer is the engine's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from flows import faults
from flows.cutouts import read_cut_outs
from flows.stamps import read_stamps
from ocr_models.engine import OcrTimeout
from ocr_models.hocr import hocr_from_page
from ocr_models.tools import OcrWarning
from pipeline.digits import fix_digits
from pipeline.esign import find_esignature
from pipeline.junk_lines import clean_page
from pipeline.language import correct_page
from pipeline.load import LoadedPage
from pipeline.preprocess import preprocess_page
from pipeline.reading_order import order_page_text
from pipeline.reread import doubtful_lines, merge_rereads, text_rows, word_height
from pipeline.seal import find_seal_rings, seal_text_bands
from pipeline.seal_read import lines_to_reread, merge_seal_line, settle_name
from pipeline.unread import add_lines, missed_lines
from schemas.ocr import OcrPage, OcrWord
from schemas.reasons import Reason, ReasonCode, reason

if TYPE_CHECKING:
    from flows.wiring import Services

log = logging.getLogger("sohoa.document")


@dataclass(frozen=True)
class PageOutput:
    ocr: OcrPage
    steps: dict[str, object]
    image_jpeg: Path
    text_pdf: Path
    hocr: Path


# A first OCR pass this poor, or read from sideways lines, may be a page scanned upside down or at 90°:
# then the engine is asked for the page's orientation (one quick extra run, only for such pages).
UNREADABLE_MIN_WORDS = 15
UNREADABLE_CONFIDENCE = 0.60
SIDEWAYS_SHARE = 0.5  # share of words (3+ characters) whose box is taller than wide
_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def read_page(page: LoadedPage, work: Path, services: Services) -> PageOutput:
    """Read ``page`` (files under ``work``, named ``p<nnnn>``): its text, words, layers and provenance steps."""
    started = time.monotonic()
    services.progress.mark("page_started")
    result, ocr_image = _ocr_pass(page.image, page, work, services)
    if _looks_wrong(result.ocr) and not result.steps.get("ocr_timeout"):
        result = _upright_pass(result, ocr_image, page, work, services)
    ocr_image.unlink(missing_ok=True)
    services.progress.mark("page_read")
    result.steps["seconds"] = round(time.monotonic() - started, 2)  # cleaning + OCR + re-reads, wall clock
    return result


def warning_reasons(outputs: list[PageOutput]) -> list[Reason]:
    """Review reasons for the engine's warnings on the pages kept (``OcrPage.warnings``). An empty page is left
    to ``pipeline.quality``, which flags a page with almost no text already."""
    return [reason(ReasonCode.OCR_WARNING, page=o.ocr.number, warning=str(code))
            for o in outputs for code in o.steps.get("ocr_warnings") or []  # type: ignore[attr-defined]
            if code != OcrWarning.EMPTY_PAGE]


def _write_hocr(ocr: OcrPage, stem: Path, services: Services) -> Path:
    """The stored hOCR derivative, written from the page as read (re-read lines merged)."""
    hocr = stem.with_suffix(".hocr")
    hocr.write_text(hocr_from_page(ocr, system=f"sohoa ({services.engine.name})"), encoding="utf-8")
    return hocr


def _image_only(page: LoadedPage, image: np.ndarray, dpi: int, stem: Path, jpeg: Path, cause: str,
                services: Services) -> PageOutput:
    """A page whose OCR timed out: kept as its image with an empty text layer and hOCR (as OCRmyPDF does)."""
    import pikepdf

    height, width = image.shape[:2]
    text_pdf = stem.with_suffix(".pdf")
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(width * 72 / dpi, height * 72 / dpi))
        pdf.save(text_pdf)
    log.warning("page %d: %s", page.number, cause)
    ocr = OcrPage(number=page.number, text="", words=[], confidence=0.0, width=width, height=height, dpi=dpi)
    return PageOutput(ocr, {"ocr_timeout": 1}, jpeg, text_pdf, _write_hocr(ocr, stem, services))


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
    services.progress.mark("ocr_started")  # the run's first page entering OCR: a start-up milestone (run log)
    try:
        reading = services.engine.recognize(ocr_png, dpi=prep.dpi, number=page.number)
    except OcrTimeout as exc:
        output = _image_only(page, prep.ocr_image, prep.dpi, stem, jpeg, str(exc), services)
        if page.number == 1:  # page 1 unread: its secrecy mark is unknown, so the document is held (fail closed)
            output.steps["secrecy_stamps"] = [{
                "kind": "unreadable", "level": "Tuyệt mật", "page": 1, "exact": False, "confidence": 0.0,
                "box": [], "readings": [], "rule": "trang 1 không nhận dạng được (quá thời gian): chưa biết độ mật"}]
        return output, ocr_png
    text_pdf = stem.with_suffix(".pdf")
    text_pdf.write_bytes(reading.text_pdf)
    ocr = reading.page
    warned = {"ocr_warnings": list(ocr.warnings)} if ocr.warnings else {}
    ocr, reread = _reread_doubtful(ocr, prep.ocr_image, stem, services)
    ocr, unread = _read_missed(ocr, prep.ocr_image, stem, services)
    ocr, sealed = _read_under_seals(ocr, prep.ocr_image, stem, services)
    ocr, junk = _drop_junk(ocr, prep.steps, sealed)
    ocr, esign = find_esignature(ocr)  # an e-office signature stamp: a fact, not page text
    junk |= {"esignature": esign.as_step()} if esign else {}
    ocr, corrected = correct_page(ocr, services.lexicon)  # diacritics from the words around (pipeline.language)
    ocr, digits = fix_digits(ocr)  # COVID-I9, l4 giờ: one-stroke letters in digit groups (pipeline.digits)
    ocr = ocr.model_copy(update={"text": order_page_text(ocr)})  # logical order; words keep engine order
    stamps = read_stamps(ocr, prep.display_image, page.number == 1, stem, services)  # secrecy stamps (issue 17)
    steps = {**prep.steps, **warned, **reread, **unread, **sealed, **junk, **corrected, **digits, **stamps}
    return PageOutput(ocr, steps, jpeg, text_pdf, _write_hocr(ocr, stem, services)), ocr_png


def _reread_doubtful(ocr: OcrPage, image: np.ndarray, stem: Path, services: Services) -> tuple[OcrPage, dict[str, int]]:
    """Read again, one by one, the lines the page pass was unsure of (``pipeline.reread``); keep what is better."""
    lines = doubtful_lines(ocr) if services.settings.ocr_reread else []
    if not lines:
        return ocr, {}
    height = word_height(ocr)
    crops: list[np.ndarray] = []
    rows: list[tuple[int, int, int]] = []  # (line index, row index, row top in the line's cut-out)
    for k, (x0, y0, x1, y1) in enumerate(line.box for line in lines):
        crop = image[y0:y1, x0:x1]
        for r, (top, bottom) in enumerate(text_rows(crop, height) if lines[k].tall else [(0, y1 - y0)]):
            crops.append(crop[top:bottom])
            rows.append((k, r, top))
    readings = read_cut_outs(crops, ocr.dpi, stem, "line", services)
    rereads: list[list[OcrWord]] = [[] for _ in lines]
    for (k, r, top), words in zip(rows, readings, strict=True):  # rows back into their line's cut-out pixels
        rereads[k] += [w.model_copy(update={"line": r, "box": (w.box[0], w.box[1] + top, w.box[2], w.box[3] + top)})
                       for w in words]
    merged, changed = merge_rereads(ocr, lines, rereads)
    return merged, {"reread_lines": len(lines), "reread_changed": changed}


def _read_missed(ocr: OcrPage, image: np.ndarray, stem: Path, services: Services) -> tuple[OcrPage, dict[str, int]]:
    """Read, one by one, the text lines the page pass left out of every block (``pipeline.unread``)."""
    boxes = missed_lines(ocr, image) if services.settings.ocr_reread else []
    if not boxes:
        return ocr, {}
    readings = read_cut_outs([image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes], ocr.dpi, stem, "missed", services)
    ocr, added = add_lines(ocr, boxes, readings)
    return ocr, {"missed_lines": len(boxes), "missed_lines_added": added}


def _read_under_seals(
    ocr: OcrPage, image: np.ndarray, stem: Path, services: Services
) -> tuple[OcrPage, dict[str, object]]:
    """Read again, cleaned of the seal, the lines a black seal covers that the page pass missed or doubted; a
    signer's name fused with the seal is settled among known names (``pipeline.seal``, ``pipeline.seal_read``)."""
    if not services.settings.ocr_seal_lines:
        return ocr, {}
    rings = find_seal_rings(image, ocr.dpi)
    if not rings:
        return ocr, {}
    lines = lines_to_reread(ocr, [(ring, band) for ring in rings for band in seal_text_bands(image, ring, ocr.dpi)])
    boxes = [[r.cx - r.ring[1], r.cy - r.ring[1], 2 * r.ring[1], 2 * r.ring[1]] for r in rings]
    steps: dict[str, object] = {"seal_rings": len(rings), "seal_lines": len(lines), "seal_ring_boxes": boxes}
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


def _drop_junk(ocr: OcrPage, prep: dict[str, object], sealed: dict[str, object]) -> tuple[OcrPage, dict[str, object]]:
    """Drop the lines read from seal ink, signatures and specks, restore list dashes (``pipeline.junk_lines``)."""
    boxes: list[list[int]] = [*(prep.get("seal_boxes") or []), *(sealed.get("seal_ring_boxes") or [])]  # type: ignore[misc]
    seals = [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in boxes]
    cleaned, dropped, fixed = clean_page(ocr, seals)
    return cleaned, ({"junk_lines": dropped} if dropped else {}) | ({"dashes_fixed": fixed} if fixed else {})


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
    """Re-read a poorly read page turned upright when the engine says it is rotated; keep the better reading."""
    angle = services.engine.detect_orientation(ocr_image, dpi=first.ocr.dpi)
    if angle not in _ROTATIONS:
        return first
    turned, turned_image = _ocr_pass(cv2.rotate(page.image, _ROTATIONS[angle]), page, work, services, tag="r")
    turned_image.unlink(missing_ok=True)
    if _looks_wrong(turned.ocr) and _evidence(turned.ocr) <= _evidence(first.ocr):
        return first
    turned.steps["rotated_deg"] = angle
    return turned
