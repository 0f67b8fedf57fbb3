"""Secrecy stamps found as stamps, not only as words (issue 17): detect, clean for reading, match, decide.

Pure OpenCV/numpy. ``find_stamps`` looks in the header band of a first page for stamp-like ink: a coloured blob
of stamp size (red, blue, violet, faded), or a rectangular frame, whole or broken, in any ink, tilted up to ~10°.
``reading_images`` cuts each candidate out in several cleanings (ink colour separated from black text; bold
strokes kept and thin text dropped; frame removed; deskewed), which the flow reads as single lines with the OCR
engine. ``judge`` matches the readings against MẬT / TỐI MẬT / TUYỆT MẬT and the known look-alikes (KHẨN,
THƯỢNG KHẨN, HỎA TỐC, BẢN SAO, received stamps) with an edit distance that knows OCR's usual confusions, and
decides fail-closed: a candidate that is not positively something else counts as a secrecy mark at the highest
level its evidence allows, flagged for review unless it was read exactly. ``settle_classification`` folds those
verdicts into the document's metadata.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage, OcrWord
from schemas.text import fold

from .preprocess import Image, estimate_skew, paper_colour, shrink, white_balance

HEADER_SHARE = 0.42  # stamps are looked for in the top 42 % of the page...
LEFT_SHARE = 0.62  # ...with their centre in the left 62 % (left column, number line, trích yếu)
WORK_DPI = 100  # detection resolution
CHROMA_MIN = 26  # white-balanced max-min channel spread of (possibly faded) coloured ink
MIN_H_MM, MAX_H_MM = 4.0, 32.0  # stamp size
MIN_W_MM, MAX_W_MM = 9.0, 115.0
H_LINE_MM, V_LINE_MM = 6.0, 3.0  # shortest frame edge segments (letters are shorter)
GAP_MM = 4.0  # frame gaps bridged (worn rubber)
ANGLES = (-8.0, -4.0, 0.0, 4.0, 8.0)  # frame search angles; ±4° steps cover ±10°
LEVELS = ("Mật", "Tối mật", "Tuyệt mật")
STAMP_INKS = ("red", "blue", "violet")
TOP_LEVEL = LEVELS[-1]
MARK_ACCEPT = 0.34  # normalised weighted edit distance for a secrecy reading
OTHER_ACCEPT = 0.26  # ... and for a positive look-alike reading (stricter: it clears the candidate)
SURE_CONFIDENCE, UNSURE_CONFIDENCE = 0.93, 0.45
STAMP_REASON = "dấu độ mật"

# Readings compared with spaces removed, diacritics folded. Look-alikes are what a header stamp may
# positively be instead of a secrecy mark.
MARK_FORMS: dict[str, str] = {"mat": "Mật", "toimat": "Tối mật", "tuyetmat": "Tuyệt mật"}
OTHER_FORMS: dict[str, str] = {
    "khan": "KHẨN", "thuongkhan": "THƯỢNG KHẨN", "hoatoc": "HỎA TỐC", "bansao": "BẢN SAO", "saoy": "SAO Y",
    "den": "ĐẾN", "congvanden": "CÔNG VĂN ĐẾN", "duthao": "DỰ THẢO",
}
RECEIVED_WORDS = ("den", "so", "ngay", "chuyen", "luuhoso")
# OCR confusions on bold stamp capitals (folded): substitutions that cost little.
_CONFUSIONS = [set("a4@"), set("ti[]|!1l"), set("o0q"), set("e3c"), set("sz5"), set("uv"), set("hn"), set("mn")]
_NOISE = set("[]|!()'\".,:;-_~{}/\\`")
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015/\\|_+.,:;~*•·]+")  # between words on a stamp (KHẨN/MẬT, SAO-MẬT)


@dataclass(frozen=True)
class Candidate:
    """A stamp-like region: box (x0, y0, x1, y1) in page pixels, how it was found, ink and tilt."""

    box: tuple[int, int, int, int]
    source: str  # "colour" | "frame" | "colour+frame"
    ink: str  # red | blue | violet | other colour | dark
    angle: float  # degrees, counter-clockwise as displayed
    rows: int = 1


@dataclass
class Verdict:
    """What a candidate is, and why (recorded in the document's provenance)."""

    box: tuple[int, int, int, int]
    page: int
    source: str
    ink: str
    angle: float
    readings: list[str]
    kind: str  # "secrecy" | "other" | "unreadable"
    level: str | None  # secrecy level for "secrecy" and "unreadable"
    exact: bool
    rule: str
    confidence: float
    matched: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# ------------------------------------------------------------------ detection


def _mm(px: float, dpi: float) -> float:
    return px * 25.4 / dpi


def _hue_name(wb: Image, mask: np.ndarray) -> str:
    hue = cv2.cvtColor(wb, cv2.COLOR_BGR2HSV)[..., 0][mask]
    if hue.size == 0:
        return "dark"
    red = float(np.mean((hue < 14) | (hue > 160)))
    if red >= 0.5:
        return "red"
    h = float(np.median(hue))
    return "violet" if 128 <= h <= 160 else "blue" if 90 <= h < 128 else "colour"


def _colour_candidates(small: Image, f: float, dpi: float) -> list[Candidate]:
    """Coloured-ink blobs of stamp size (seals, being round and large, excluded)."""
    wb = white_balance(small, paper_colour(small, int(dpi * f)))
    hi = wb.max(axis=2).astype(np.int16)
    colour = ((hi - wb.min(axis=2)) >= CHROMA_MIN).astype(np.uint8)
    colour = cv2.morphologyEx(colour, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    merged = cv2.dilate(colour, np.ones((9, 9), np.uint8))  # worn stamps come in pieces
    n, labels, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
    work_dpi = dpi * f
    out = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        inside = labels[y : y + h, x : x + w] == i
        ink = int(colour[y : y + h, x : x + w][inside].sum())
        wmm, hmm = _mm(w, work_dpi), _mm(h, work_dpi)
        if ink < 30 or not (MIN_H_MM <= hmm <= MAX_H_MM and MIN_W_MM <= wmm <= MAX_W_MM) or wmm < 1.2 * hmm:
            continue  # stamps are lines of text: wider than tall
        if y + h >= small.shape[0] - 2:  # cut by the band's lower edge: the top of something lower (a seal)
            continue
        if min(wmm, hmm) >= 20 and abs(wmm - hmm) < 0.2 * max(wmm, hmm):  # a round seal, not a stamp
            continue
        name = _hue_name(wb[y : y + h, x : x + w], inside & (colour[y : y + h, x : x + w] > 0))
        if name not in STAMP_INKS:  # yellow-brown: a stain or foxing, not stamp ink
            continue
        box = (x - 2, y - 2, x + w + 2, y + h + 2)
        out.append(Candidate(tuple(round(v / f) for v in box), "colour", name, 0.0))  # type: ignore[arg-type]
    return out


def _rotation(shape: tuple[int, ...], angle: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return m, cv2.invertAffineTransform(m)


def _segments(mask: np.ndarray, horizontal: bool, min_len: int) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1) of line components at least ``min_len`` long."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        if (w if horizontal else h) >= min_len:
            out.append((x, y, x + w, y + h))
    return out


def _frame_candidates(small: Image, f: float, dpi: float) -> list[Candidate]:
    """Rectangular frames in any ink, searched at a few tilts: two long thin horizontal edges one above the other,
    of similar length (gaps bridged), joined by both side edges, with ink between them and no aligned third edge
    (a table). Coloured stamps whose frame is too worn for this are found by their colour."""
    work_dpi = dpi * f
    px = work_dpi / 25.4
    gray = small.min(axis=2) if small.ndim == 3 else small
    block = max(15, int(6 * px) | 1)
    ink = cv2.adaptiveThreshold(gray, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 12)
    pad = int(0.1 * ink.shape[1])
    ink = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    kh, gap = max(5, round(H_LINE_MM * px)), max(3, round(GAP_MM * px))
    kv, side = max(3, round(V_LINE_MM * px)), max(2, round(1.5 * px))
    min_h, max_h = MIN_H_MM * px, MAX_H_MM * px
    out = []
    for angle in ANGLES:
        m, inv = _rotation(ink.shape, angle)
        rot = cv2.warpAffine(ink, m, (ink.shape[1], ink.shape[0]), flags=cv2.INTER_NEAREST)
        hl = cv2.morphologyEx(rot, cv2.MORPH_OPEN, np.ones((1, kh), np.uint8))
        hl = cv2.morphologyEx(hl, cv2.MORPH_CLOSE, np.ones((1, gap), np.uint8))
        vl = cv2.morphologyEx(rot, cv2.MORPH_OPEN, np.ones((kv, 1), np.uint8))
        hs = [s for s in _segments(hl, True, round(MIN_W_MM * px * 0.8)) if s[3] - s[1] <= 1.6 * px]
        for i, a in enumerate(hs):
            for b in hs[i + 1 :]:
                top, bot = (a, b) if a[1] < b[1] else (b, a)
                dy = bot[1] - top[3]
                overlap = min(top[2], bot[2]) - max(top[0], bot[0])
                shorter = min(top[2] - top[0], bot[2] - bot[0])
                longer = max(top[2] - top[0], bot[2] - bot[0])
                if not (min_h <= dy + 2 <= max_h and overlap >= 0.7 * shorter and shorter >= 0.6 * longer
                        and longer <= MAX_W_MM * px):
                    continue
                if any(c not in (top, bot) and top[1] - max_h < c[1] < bot[3] + max_h
                       and abs(c[0] - top[0]) < 0.1 * longer and abs(c[2] - top[2]) < 0.1 * longer for c in hs):
                    continue  # a third rule in between or next to it: a table or ruled block, not one stamp
                x0, x1 = max(top[0], bot[0]), min(top[2], bot[2])
                inner = rot[top[3] + 1 : bot[1], x0:x1]
                if inner.size == 0 or not 0.04 <= float(inner.mean()) <= 0.6:
                    continue
                rows = max(1, bot[3] - top[1])
                walls = [float(vl[top[1] : bot[3] + 1, max(0, x - side) : x + side + 1].any(axis=1).sum()) / rows
                         for x in (x0, x1)]
                if min(walls) < 0.6:  # both side edges: a frame, not a rule under a line of bold text
                    continue
                corners = np.array([[x0, top[1], 1], [x1, top[1], 1], [x0, bot[3], 1], [x1, bot[3], 1]], float) @ inv.T
                (cx0, cy0), (cx1, cy1) = corners.min(axis=0) - pad, corners.max(axis=0) - pad
                box = (round((cx0 - 2) / f), round((cy0 - 2) / f), round((cx1 + 2) / f), round((cy1 + 2) / f))
                out.append(Candidate(box, "frame", "dark", angle))
    return out


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def _contains(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Share of ``b`` inside ``a``."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, (b[2] - b[0]) * (b[3] - b[1]))


def _merge(cands: list[Candidate]) -> list[Candidate]:
    """One candidate per stamp: frames found at several tilts and the same stamp's colour blob merge."""
    out: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.source != "colour", abs(c.angle))):
        same = next((i for i, o in enumerate(out) if _iou(o.box, c.box) > 0.4 or _contains(o.box, c.box) > 0.8
                     or _contains(c.box, o.box) > 0.8), None)
        if same is None:
            out.append(c)
            continue
        o = out[same]
        if o.source == "colour" and c.source == "frame":  # colour box, tilt and evidence of the frame
            out[same] = Candidate(o.box, "colour+frame", o.ink, c.angle)
    return out


def find_stamps(bgr: Image, dpi: int) -> list[Candidate]:
    """Secrecy-stamp candidates in the header band of an upright page (BGR or grayscale, ``dpi``)."""
    if bgr.ndim == 2:
        bgr = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR), np.uint8)
    band = bgr[: int(bgr.shape[0] * HEADER_SHARE)]
    small = shrink(band, dpi, WORK_DPI)
    f = small.shape[1] / band.shape[1]
    cands = _colour_candidates(small, f, dpi) + _frame_candidates(small, f, dpi)
    width = bgr.shape[1]
    keep = [c for c in cands if (c.box[0] + c.box[2]) / 2 < LEFT_SHARE * width]
    clipped = [Candidate((max(0, c.box[0]), max(0, c.box[1]), min(width, c.box[2]), min(band.shape[0], c.box[3])),
                         c.source, c.ink, c.angle) for c in keep]
    return _merge(clipped)


# ------------------------------------------------------------------ cleaning for reading


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


# ------------------------------------------------------------------ matching


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.35 if any(a in g and b in g for g in _CONFUSIONS) else 1.0


def _align(read: str, target: str) -> float:
    """Weighted edit distance of ``target`` within ``read`` (free noise characters, cheap extra letters around)."""
    n, m = len(read), len(target)
    inf = float("inf")
    prev = [float(j) for j in range(m + 1)]
    best = prev[m] + 0.0
    for i in range(1, n + 1):
        ch = read[i - 1]
        skip = 0.1 if ch in _NOISE else 0.25
        cur = [prev[0] + skip] + [inf] * m
        for j in range(1, m + 1):
            cur[j] = min(prev[j] + (0.1 if ch in _NOISE else 1.0), cur[j - 1] + 1.0,
                         prev[j - 1] + _sub_cost(ch, target[j - 1]))
        prev = cur
        best = min(best + (0.1 if ch in _NOISE else 0.25), prev[m])
    return best / m


def _squash(text: str) -> str:
    return "".join(ch for ch in fold(text) if not ch.isspace())


def match_reading(text: str) -> tuple[str, str, float] | None:
    """Best (kind, value, distance) of one reading: kind "secrecy" (value a level) or "other" (a look-alike)."""
    read = _squash(text)
    if sum(ch.isalnum() for ch in read) < 2:
        return None
    scored = [("secrecy", v, _align(read, k)) for k, v in MARK_FORMS.items()]
    scored += [("other", v, _align(read, k)) for k, v in OTHER_FORMS.items()]
    return min(scored, key=lambda s: (s[2], -len(s[1])))


def _tokens(text: str) -> list[str]:
    """Folded words of a reading, split on spaces and the separators stamps and OCR put between words."""
    return [t for t in (_squash(p) for p in _SEPARATORS.split(text)) if sum(ch.isalnum() for ch in t) >= 2]


def secrecy_match(text: str) -> tuple[str, float] | None:
    """(level, distance) of the highest secrecy mark found in a reading, or None.

    Matched against the whole reading and against each word and run of up to three words, so that a mark beside a
    look-alike (``BẢN SAO-MẬT``, ``KHẨN/MẬT``) is found even when the look-alike is the better whole-reading match."""
    whole = _squash(text)
    if sum(ch.isalnum() for ch in whole) < 2:
        return None
    tokens = _tokens(text)
    groups = {whole} | {"".join(tokens[i : i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)}
    found: dict[str, float] = {}
    for group in groups:
        level, dist = min(((v, _align(group, k)) for k, v in MARK_FORMS.items()), key=lambda s: (s[1], -len(s[0])))
        if dist <= MARK_ACCEPT:
            found[level] = min(dist, found.get(level, dist))
    if not found:
        return None
    level = max(found, key=LEVELS.index)
    return level, found[level]


def _exact(text: str, level: str) -> bool:
    """The reading is the mark itself, diacritics included (``TÔI MẬT`` is close, not exact)."""
    letters = "".join(ch for ch in unicodedata.normalize("NFC", text.upper()) if ch.isalpha())
    return letters == level.upper().replace(" ", "")


def _received(readings: Sequence[str]) -> bool:
    words = [_squash(r) for r in readings]
    hits = {w for w in RECEIVED_WORDS for r in words if w in r and (w != "so" or any(c.isdigit() for c in r))}
    return ("den" in hits and len(hits) >= 2) or {"so", "ngay"} <= hits


def _level_by_width(info: dict[str, object]) -> str | None:
    """The longest mark the stamp's text line is wide enough for (bold capitals; ratio width / line height)."""
    ratio = info.get("width_per_height")
    if not isinstance(ratio, float) or info.get("rows") != 1:
        return None
    return "Tuyệt mật" if ratio > 5.6 else "Tối mật" if ratio > 3.7 else "Mật"


def judge(cand: Candidate, page: int, readings: Sequence[str], info: dict[str, object]) -> Verdict:
    """Decide what ``cand`` is from its readings (crop readings and the page pass's words inside it)."""
    readings = [r.strip() for r in readings if r and r.strip()]
    base = {"box": cand.box, "page": page, "source": cand.source, "ink": cand.ink,
            "angle": float(info.get("angle", cand.angle)),  # type: ignore[arg-type]
            "readings": list(readings), "extra": info}
    marks: list[tuple[float, str, str]] = []
    others: list[tuple[float, str, str]] = []
    for text in readings:
        # Fail closed: secrecy evidence anywhere in any reading wins over a look-alike, however well that matches.
        mark = secrecy_match(text)
        if mark is not None:
            marks.append((mark[1], mark[0], text))
        best = match_reading(text)
        if best is not None and best[0] == "other" and best[2] <= OTHER_ACCEPT:
            others.append((best[2], best[1], text))
    if marks:
        level = max((v for _, v, _ in marks), key=LEVELS.index)
        # a stamp that also reads as something else is classified at the level found, and reviewed
        exact = (any(_exact(t, level) for _, v, t in marks if v == level) and not others
                 and not _received(readings))
        by_width = _level_by_width(info)
        rule = f"đọc được dấu {level.upper()}"
        if by_width and LEVELS.index(by_width) > LEVELS.index(level) and not exact:
            level, rule = by_width, f"{rule}; khung chữ đủ rộng cho {by_width.upper()}: lấy mức cao hơn"
        dist, _, text = min((m for m in marks if m[1] == level), default=min(marks))
        return Verdict(**base, kind="secrecy", level=level, exact=exact, matched=text,  # type: ignore[arg-type]
                       rule=rule + ("" if exact else f" (gần đúng, sai số {dist:.2f})"),
                       confidence=SURE_CONFIDENCE if exact else UNSURE_CONFIDENCE)
    if _received(readings):
        return Verdict(**base, kind="other", level=None, exact=True, matched="ĐẾN",  # type: ignore[arg-type]
                       rule="dấu công văn đến", confidence=SURE_CONFIDENCE)
    if others:
        dist, value, text = min(others)
        return Verdict(**base, kind="other", level=None, exact=dist == 0, matched=text,  # type: ignore[arg-type]
                       rule=f"dấu {value}", confidence=SURE_CONFIDENCE)
    return Verdict(**base, kind="unreadable", level=TOP_LEVEL, exact=False, matched=None,  # type: ignore[arg-type]
                   rule="dấu không đọc được: coi như TUYỆT MẬT cho đến khi lưu trữ viên xác nhận",
                   confidence=UNSURE_CONFIDENCE)


def words_inside(ocr: OcrPage, box: tuple[int, int, int, int]) -> str:
    """The page pass's words whose centre lies inside ``box``, in reading order (one reading more)."""
    x0, y0, x1, y1 = box
    inside: list[OcrWord] = [w for w in ocr.words if x0 <= (w.box[0] + w.box[2]) / 2 <= x1
                             and y0 <= (w.box[1] + w.box[3]) / 2 <= y1]
    return " ".join(w.text for w in sorted(inside, key=lambda w: (w.line, w.box[0])))


def looks_like_first_page(ocr: OcrPage) -> bool:
    """A page whose header reads like a document's first page (national or Party heading, and a ``Số``)."""
    top = [w for w in ocr.words if w.box[3] < HEADER_SHARE * ocr.height]
    text = " ".join(fold(w.text) for w in top)
    heading = "cong san viet nam" in text or "chu nghia viet nam" in text
    return heading and any(fold(w.text).rstrip(":") == "so" for w in top)


# ------------------------------------------------------------------ decision


def stamp_reason(v: dict[str, object]) -> str:
    """Vietnamese review reason naming the mark and its evidence crop."""
    box: Any = v.get("box") or ()
    readings: Any = v.get("readings") or []
    read = v.get("matched") or next(iter(readings), "") or "—"
    return (f"{STAMP_REASON} trang {v.get('page')} vùng {list(box)} đọc được «{read}» → {v.get('level')} "
            f"({v.get('rule')}): cần lưu trữ viên xác nhận hoặc hạ mức")


def settle_classification(metadata: DocumentMetadata, verdicts: Sequence[dict[str, object]]) -> list[str]:
    """Raise ``metadata.classification`` to the highest level the stamps allow; review reasons for the unsure.

    The text-based mark stays when it is higher. A level taken from a stamp not read exactly gets low evidence
    confidence (the document is then reviewed, and kept classified until an archivist confirms or lowers it)."""
    found = [v for v in verdicts if v.get("kind") in ("secrecy", "unreadable") and v.get("level") in LEVELS]
    if not found:
        return []
    best = max(found, key=lambda v: (LEVELS.index(str(v["level"])), bool(v.get("exact"))))
    level = str(best["level"])
    current = metadata.classification
    reasons = [stamp_reason(v) for v in found if not v.get("exact")]
    if current in LEVELS and LEVELS.index(current) > LEVELS.index(level):
        return reasons
    if current == level and (best.get("exact") or reasons == []):
        return reasons
    unsure = [v for v in found if not v.get("exact") and v.get("level") == level]
    raw = str(best.get("matched") or "") or " / ".join(str(r) for r in best.get("readings") or [])  # type: ignore[attr-defined]
    confidence = float(best["confidence"]) if not unsure else UNSURE_CONFIDENCE  # type: ignore[arg-type]
    metadata.classification = level
    metadata.evidence["classification"] = FieldEvidence(confidence=round(confidence, 3), page=int(best["page"]),  # type: ignore[call-overload]
                                                        raw=raw or None)
    return reasons
