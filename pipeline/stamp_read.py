"""Secrecy stamps, step 2: cut a candidate out for reading (``reading_images``) in several cleanings — ink
colour separated from black text, bold strokes kept and thin text dropped, frame removed, deskewed — which the
flow reads as single lines with the OCR engine. Pure OpenCV/numpy. The whole design: ``pipeline.stamp``.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.stamp_detect import CHROMA_MIN, Candidate

from .preprocess import Image, estimate_skew, white_balance


def _rotate(image: Image, angle: float, fill: int = 255) -> Image:
    if abs(angle) < 0.2:
        return image
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    return np.asarray(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill), np.uint8)


def _drop_frame(ink: np.ndarray) -> np.ndarray:
    """``ink`` (0/1) without long straight edges (the frame) and without what touches the crop's border."""
    h, w = ink.shape
    lines = np.asarray(cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, max(3, int(0.35 * w))), np.uint8)), np.uint8)
    lines |= np.asarray(cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((max(3, int(0.55 * h)), 1), np.uint8)), np.uint8)
    frame = np.asarray(cv2.dilate(lines, np.ones((5, 5), np.uint8)), np.uint8) > 0
    ink = ((ink > 0) & ~frame).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < 12 or ((x == 0 or y == 0 or x + bw == w or y + bh == h) and bh < 0.3 * h):
            ink[labels == i] = 0
    return ink


def _bold_only(ink: np.ndarray, dpi: int) -> np.ndarray:
    """Bold strokes kept, thinner text dropped (opening by reconstruction)."""
    r = max(2, round(0.45 * dpi / 100))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    seed = cv2.erode(ink, disc)
    if not seed.any():
        return seed
    n, labels = cv2.connectedComponents(ink, connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[seed > 0])] = True
    keep[0] = False
    return keep[labels].astype(np.uint8)


def _image(ink: np.ndarray, scale: float = 1.0) -> Image:
    img = np.where(ink > 0, 0, 255).astype(np.uint8)
    if scale != 1.0:
        img = np.asarray(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
    return np.asarray(cv2.copyMakeBorder(img, 20, 20, 30, 30, cv2.BORDER_CONSTANT, value=255), np.uint8)


def _text_rows(ink: np.ndarray) -> list[tuple[int, int]]:
    """Row bands of ink (text lines) of a cleaned crop."""
    prof = ink.sum(axis=1) > max(2, 0.01 * ink.shape[1])
    rows, start = [], None
    for y, on in enumerate([*prof, False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            if y - start >= 6:
                rows.append((start, y))
            start = None
    merged: list[tuple[int, int]] = []
    for r in rows:  # diacritics above/below a row belong to it
        close = bool(merged) and r[0] - merged[-1][1] < 0.25 * (r[1] - r[0])
        accent = bool(merged) and r[1] - r[0] < 0.3 * (merged[-1][1] - merged[-1][0]) and r[0] - merged[-1][1] < 12
        if close or accent:
            merged[-1] = (merged[-1][0], r[1])
        else:
            merged.append(r)
    return merged


def reading_images(bgr: Image, dpi: int, cand: Candidate) -> tuple[list[Image], dict[str, object]]:
    """Cut-outs of the candidate for single-line reading, and measurements (rows, text width / height)."""
    if bgr.ndim == 2:
        bgr = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR), np.uint8)
    x0, y0, x1, y1 = cand.box
    m = round(1.2 * dpi / 25.4)
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(bgr.shape[1], x1 + m), min(bgr.shape[0], y1 + m)
    crop = bgr[y0:y1, x0:x1]
    if crop.size == 0:
        return [], {}
    wb = white_balance(crop, np.asarray(np.percentile(crop.reshape(-1, 3), 95, axis=0), np.float32))
    dark = wb.min(axis=2)
    angle = cand.angle if cand.source != "colour" else estimate_skew(dark, dpi, max_deg=12.0)
    inks: list[np.ndarray] = []
    if cand.ink != "dark":  # colour separation: the stamp's ink without the black text under it
        chroma = (wb.max(axis=2).astype(np.int16) - wb.min(axis=2)).clip(0, 255).astype(np.uint8)
        chroma = _rotate(chroma, angle, 0)
        _, otsu_sep = cv2.threshold(chroma, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        inks.append(((np.asarray(otsu_sep) > 0) & (chroma >= CHROMA_MIN * 0.6)).astype(np.uint8))
    gray = _rotate(dark, angle)
    _, otsu = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    inks.append(otsu.astype(np.uint8))
    inks.append(_bold_only(otsu.astype(np.uint8), dpi))
    cleaned = [_drop_frame(i) for i in inks]
    images: list[Image] = []
    info: dict[str, object] = {"angle": round(float(angle), 1)}
    main = max(cleaned[:1] if cand.ink != "dark" else cleaned[-1:], key=lambda i: int(i.sum()))
    rows = _text_rows(main)
    info["rows"] = len(rows)
    if rows:
        top, bot = max(rows, key=lambda r: int(main[r[0] : r[1]].sum()))
        cols = np.nonzero(main[top:bot].any(axis=0))[0]
        if cols.size:
            info["width_per_height"] = round(float(cols[-1] - cols[0]) / max(1, bot - top), 2)
    for ink in cleaned:
        if ink.sum() < 20:
            continue
        images.append(_image(ink))
        thick = cv2.dilate(ink, np.ones((3, 3), np.uint8))  # worn strokes closed
        images.append(_image(cv2.morphologyEx(thick, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)), 0.6))
    if len(rows) >= 2:  # a multi-line stamp (received stamp): each line on its own
        for top, bot in rows[:4]:
            images.append(_image(main[max(0, top - 4) : bot + 4]))
    return images, info
