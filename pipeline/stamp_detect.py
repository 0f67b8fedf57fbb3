"""Secrecy stamps, step 1: find stamp-like ink in the header band of a first page (``find_stamps``): a coloured
blob of stamp size (red, blue, violet, faded), or a rectangular frame, whole or broken, in any ink, tilted up
to ~10°. Pure OpenCV/numpy. The whole design: ``pipeline.stamp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import Image, paper_colour, shrink, white_balance

HEADER_SHARE = 0.42  # stamps are looked for in the top 42 % of the page...
LEFT_SHARE = 0.62  # ...with their centre in the left 62 % (left column, number line, trích yếu)
WORK_DPI = 100  # detection resolution
CHROMA_MIN = 26  # white-balanced max-min channel spread of (possibly faded) coloured ink
MIN_H_MM, MAX_H_MM = 4.0, 32.0  # stamp size
MIN_W_MM, MAX_W_MM = 9.0, 115.0
H_LINE_MM, V_LINE_MM = 6.0, 3.0  # shortest frame edge segments (letters are shorter)
GAP_MM = 4.0  # frame gaps bridged (worn rubber)
ANGLES = (-8.0, -4.0, 0.0, 4.0, 8.0)  # frame search angles; ±4° steps cover ±10°
STAMP_INKS = ("red", "blue", "violet")


@dataclass(frozen=True)
class Candidate:
    """A stamp-like region: box (x0, y0, x1, y1) in page pixels, how it was found, ink and tilt."""

    box: tuple[int, int, int, int]
    source: str  # "colour" | "frame" | "colour+frame"
    ink: str  # red | blue | violet | other colour | dark
    angle: float  # degrees, counter-clockwise as displayed
    rows: int = 1


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
