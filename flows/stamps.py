"""Secrecy stamps read as stamps (issue 17): the flow side of ``pipeline.stamp``.

On a first page (page 1, or a page whose header reads like one) the stamp candidates are cut out, cleaned in
several ways and read as single lines in one engine run; each candidate's verdict (box, readings, decision rule,
confidence) goes into the page's provenance steps, and ``pipeline.stamp.settle_classification`` turns the
verdicts into the document's classification.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flows.cutouts import read_cut_outs
from pipeline.stamp import find_stamps, judge, looks_like_first_page, reading_images, words_inside
from schemas.ocr import OcrPage

if TYPE_CHECKING:
    from flows.wiring import Services


def read_stamps(ocr: OcrPage, page_image: np.ndarray, first: bool, stem: Path,
                services: Services) -> dict[str, object]:
    """Provenance steps for the page's secrecy-stamp candidates (empty when the page is not a first page)."""
    if not (first or looks_like_first_page(ocr)):
        return {}
    started = time.process_time()
    candidates = find_stamps(page_image, ocr.dpi)
    steps: dict[str, object] = {"stamp_detect_cpu_s": round(time.process_time() - started, 3)}
    if not candidates:
        steps["secrecy_stamps"] = []
        return steps
    cut: list[tuple[int, dict[str, object]]] = []
    images: list[np.ndarray] = []
    for cand in candidates:
        crops, info = reading_images(page_image, ocr.dpi, cand)
        cut.append((len(crops), info))
        images += crops
    words = read_cut_outs(images, ocr.dpi, stem, "stamp", services)
    verdicts = []
    at = 0
    for cand, (n, info) in zip(candidates, cut, strict=True):
        readings = [" ".join(w.text for w in sorted(ws, key=lambda w: w.box[0])) for ws in words[at : at + n]]
        at += n
        readings.append(words_inside(ocr, cand.box))
        verdicts.append(judge(cand, ocr.number, readings, info).as_dict())
    steps["secrecy_stamps"] = verdicts
    return steps
