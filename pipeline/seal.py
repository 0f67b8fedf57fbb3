"""Round seals printed in black: find the ring, wipe its strokes and lettering, re-read the lines it covers.

A red seal is faded out of the OCR image by colour (``pipeline.preprocess``); on a black-and-white photocopy the
seal is as dark as the text, and where the bottom of its ring and its curved lettering lie over the signer's name
tesseract's page pass drops the whole line. This module finds such a seal by its geometry and cleans the lines
that cross it, so they can be read again one by one (``--psm 7``); the caller runs the engine and decides what
to keep (``pipeline.seal_read``).

Finding (``find_seal_rings``): Hough circles on a 75-dpi copy give candidates of a plausible size
(``RING_MIN_MM``..``RING_MAX_MM`` radius). Each is refined on the full image and kept only when its radial
profile looks like a seal: a ring stroke dark at one radius all the way round (``RING_MIN_COVERAGE`` of the
angles) and, inside it, a band of lettering (dark at some angles only). A circle drawn by hand, a round
letter or a photo rarely has both.

Cleaning (``clean_seal``), in polar coordinates around the ring's centre, where the ring is a straight line and
the lettering a straight band:

- ring strokes: ink that continues along the ring (an opening along the angle axis) and is thin across it (its
  radial run no longer than the ring band): a text stroke crossing the ring keeps its pixels;
- lettering: connected pieces of ink lying wholly inside the lettering band and about as tall as it (a
  letter of the seal, not a diacritic or the dot of an ``i`` of the text), then an opening inside that band
  that removes strokes thinner than the text's (the seal's letters are thin, signer names are printed bold).

Text bands (``seal_text_bands``): rows of ink in the cleaned image, next to the ring, that cross its disc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Mask = NDArray[np.bool_]
Box = tuple[int, int, int, int]

FIND_DPI = 75  # Hough circles run on a copy this coarse (a few milliseconds per page)
RING_MIN_MM = 14.0  # outer radius of a seal (Party and State seals are about 35-42 mm across)
RING_MAX_MM = 25.0
HOUGH_EDGE = 120  # Canny upper threshold for the Hough transform
HOUGH_VOTES = 40  # accumulator votes for a circle candidate on the 75-dpi copy
MAX_CANDIDATES = 3  # per page
INK_LEVEL = 128  # darker than this is ink
REFINE_STEP_MM = 0.7  # first step of the hill climbing that centres the ring (halved down to one pixel)
MAX_REFINE_MOVES = 40
SCORE_ANGLES = 720  # angles sampled when scoring a centre
PROFILE_REACH = 1.35  # the radial profile reaches this far (share of the Hough radius)
RING_MIN_SHARE = 0.75  # the ring stroke lies beyond this share of the Hough radius
LETTERS_MIN_SHARE = 0.5  # the lettering lies beyond this share of the ring's outer radius
RING_MIN_COVERAGE = 0.8  # share of angles dark at the ring stroke's radius
RING_BAND_COVERAGE = 0.25  # the ring band (outer ring and thin inner rings) is darker than this at every radius
LETTERS_COVERAGE = 0.2  # the lettering band is darker than this at every radius ...
LETTERS_MAX_COVERAGE = 0.7  # ... and on average lighter than this (letters, not a solid ring)
LETTERS_MIN_WIDTH = 0.06  # lettering band width, share of the ring radius
TANGENT_LENGTH = 0.14  # a ring stroke continues along the ring at least this far (share of the radius)
RING_RUN_SLACK = 4  # pixels: a ring stroke's radial run may exceed the ring band by this much
LETTER_MIN_HEIGHT = 0.6  # a seal letter spans at least this share of the lettering band radially
THIN_STROKE_MM = 0.6  # strokes thinner than this inside the lettering band are the seal's (text is bolder)
BAND_MIN_MM = 1.5  # a text band is at least this tall ...
BAND_MAX_MM = 9.0  # ... and at most this tall
BAND_ROW_INK = 0.02  # a row belongs to a band when this share of the window's width is ink
BAND_PAD_MM = 1.2  # white margin around a band's crop
BAND_REACH = 2.5  # text bands are looked for up to this many ring radii right of the centre


@dataclass(frozen=True)
class SealRing:
    """A seal's ring, in page pixels: centre, ring-stroke band and lettering band (radii)."""

    cx: int
    cy: int
    ring: tuple[int, int]  # inner and outer radius of the ring strokes
    letters: tuple[int, int]  # inner and outer radius of the lettering

    @property
    def radius(self) -> int:
        return self.ring[1]


def _mm(dpi: int) -> float:
    return dpi / 25.4


def _polar(ink: Mask, cx: float, cy: float, radius: int, angles: int = 0) -> Mask:
    """``ink`` around (cx, cy) unrolled: row = angle, column = radius; by default one row per pixel of arc."""
    rows = angles or max(8, round(2 * math.pi * radius))
    flags = cv2.WARP_POLAR_LINEAR + cv2.INTER_NEAREST
    polar = cv2.warpPolar(ink.astype(np.uint8) * 255, (radius, rows), (float(cx), float(cy)), radius, flags)
    return np.asarray(polar > 127)


def _coverage(ink: Mask, cx: float, cy: float, radius: int, angles: int = 0) -> NDArray[np.float64]:
    """Share of angles that are ink at each radius 0..radius-1."""
    return np.asarray(_polar(ink, cx, cy, radius, angles).mean(axis=0), dtype=np.float64)


def _ring_score(ink: Mask, cx: int, cy: int, r0: float) -> float:
    cov = _coverage(ink, cx, cy, round(PROFILE_REACH * r0), SCORE_ANGLES)
    return float(np.convolve(cov, np.ones(3) / 3, mode="same")[round(RING_MIN_SHARE * r0) :].max())


def _refine(ink: Mask, cx: float, cy: float, r0: float, dpi: int) -> tuple[int, int]:
    """The centre near (cx, cy) where a ring of radius about ``r0`` is darkest all round (hill climbing)."""
    x, y = round(cx), round(cy)
    best = _ring_score(ink, x, y, r0)
    step = max(1, round(REFINE_STEP_MM * _mm(dpi)))
    moves = 0
    while step >= 1 and moves < MAX_REFINE_MOVES:
        scored = [(_ring_score(ink, x + dx, y + dy, r0), x + dx, y + dy)
                  for dx in (-step, 0, step) for dy in (-step, 0, step) if dx or dy]
        score, nx, ny = max(scored)
        if score > best:
            best, x, y = score, nx, ny
            moves += 1
        else:
            step //= 2
    return x, y


def _runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _structure(cov: NDArray[np.float64], r0: float) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Ring band and lettering band from the radial coverage profile, or ``None`` when it is not a seal.

    The ring stroke is the radius dark at nearly every angle; the lettering is the widest band inside it that is
    dark at some angles only; everything between the lettering and the ring's outer edge (thin inner rings
    included) is the ring band.
    """
    smooth = np.convolve(cov, np.ones(3) / 3, mode="same")
    lo = round(RING_MIN_SHARE * r0)
    peak = lo + int(np.argmax(smooth[lo:]))
    if smooth[peak] < RING_MIN_COVERAGE:
        return None
    outer = peak
    while outer + 1 < len(smooth) and smooth[outer + 1] >= RING_BAND_COVERAGE:
        outer += 1
    start = round(LETTERS_MIN_SHARE * outer)
    runs = [(s + start, e + start) for s, e in _runs(smooth[start:peak] >= LETTERS_COVERAGE)]
    runs = [(s, e) for s, e in runs if e < peak - 1 and e - s >= LETTERS_MIN_WIDTH * outer
            and smooth[s:e].mean() <= LETTERS_MAX_COVERAGE]
    if not runs:
        return None
    s, e = max(runs, key=lambda run: run[1] - run[0])
    return (e, outer + 1), (s, e)


def find_seal_rings(gray: Image, dpi: int) -> list[SealRing]:
    """Round seals on the page (any ink colour), found by their ring and lettering."""
    f = FIND_DPI / dpi
    small = cv2.GaussianBlur(cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA), (3, 3), 0)
    mm = FIND_DPI / 25.4
    circles = cv2.HoughCircles(
        small, cv2.HOUGH_GRADIENT, dp=1, minDist=2 * RING_MIN_MM * mm, param1=HOUGH_EDGE, param2=HOUGH_VOTES,
        minRadius=round(RING_MIN_MM * mm), maxRadius=round(RING_MAX_MM * mm),
    )
    if circles is None:
        return []
    ink = gray < INK_LEVEL
    h, w = gray.shape[:2]
    found: list[SealRing] = []
    for x, y, r in circles[0][:MAX_CANDIDATES]:
        cx, cy, r0 = x / f, y / f, r / f
        if not (r0 <= cx < w - r0 and r0 <= cy < h - r0):
            continue  # a seal cut by the page edge is left alone
        rx, ry = _refine(ink, cx, cy, r0, dpi)
        shape = _structure(_coverage(ink, rx, ry, round(PROFILE_REACH * r0)), r0)
        if shape is None:
            continue
        ring = SealRing(rx, ry, *shape)
        if all(math.hypot(ring.cx - o.cx, ring.cy - o.cy) > o.radius for o in found):
            found.append(ring)
    return found


def _radial_runs(polar: Mask) -> NDArray[np.int32]:
    """Length of the radial ink run through each pixel of a polar image."""
    out = np.zeros(polar.shape, np.int32)
    padded = np.zeros((polar.shape[0], polar.shape[1] + 2), np.int8)
    padded[:, 1:-1] = polar
    d = np.diff(padded, axis=1)
    for a in range(polar.shape[0]):
        starts, ends = np.flatnonzero(d[a] == 1), np.flatnonzero(d[a] == -1)
        for s, e in zip(starts, ends, strict=True):
            out[a, s:e] = e - s
    return out


def _from_polar(polar: Mask, dx: NDArray[np.int64], dy: NDArray[np.int64], dist: NDArray[np.float64]) -> Mask:
    """A polar mask (rows = angles, columns = radii, as ``_polar``) back on the page grid, grown by a pixel."""
    rows, radius = polar.shape
    angle = np.mod(np.arctan2(dy, dx), 2 * math.pi)
    row = np.minimum(rows - 1, (angle * rows / (2 * math.pi)).astype(np.int64))
    col = np.minimum(radius - 1, dist.astype(np.int64))
    back = polar[row, col] & (dist < radius)
    return np.asarray(cv2.dilate(back.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)


def _seal_marks(ink: Mask, ring: SealRing, dpi: int, cx: int, cy: int) -> Mask:
    """Pixels of ``ink`` (a window whose centre of the seal is (cx, cy)) that belong to the seal's ring or letters."""
    radius = ring.ring[1] + RING_RUN_SLACK + 2
    polar = _polar(ink, cx, cy, radius)
    length = max(3, round(TANGENT_LENGTH * ring.radius))
    wrapped = np.concatenate([polar[-length:], polar, polar[:length]]).astype(np.uint8)  # the angle axis is a circle
    tangent = np.ones((length, 1), np.uint8)
    along = cv2.morphologyEx(wrapped, cv2.MORPH_OPEN, tangent)[length:-length] > 0
    r_lo = ring.ring[0] - RING_RUN_SLACK
    runs = _radial_runs(polar)
    band = along[:, r_lo:]
    peak = r_lo + int(np.argmax(band.mean(axis=0)))  # the ring stroke's radius
    thickness = float(np.median(runs[along[:, peak], peak])) if along[:, peak].any() else 0.0
    marks = along & (runs <= thickness + 2 * RING_RUN_SLACK)  # a text stroke crossing the ring is longer
    marks[:, :r_lo] = False
    rest = (polar & ~marks).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    l_lo, l_hi = ring.letters[0] - RING_RUN_SLACK, ring.letters[1] + RING_RUN_SLACK
    min_height = LETTER_MIN_HEIGHT * (ring.letters[1] - ring.letters[0])
    for i in range(1, n):
        x, _, width, _, _ = stats[i]
        if x >= l_lo and x + width <= l_hi and width >= min_height:
            marks |= labels == i
    ys, xs = np.ogrid[: ink.shape[0], : ink.shape[1]]
    dist = np.hypot(xs - cx, ys - cy)
    back = _from_polar(marks, xs - cx, ys - cy, dist)
    kept = ink & ~back
    k = max(3, round(THIN_STROKE_MM * _mm(dpi)) | 1)
    bold = cv2.morphologyEx(kept.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    in_letters = (dist >= l_lo) & (dist <= l_hi)
    return np.asarray(back | (in_letters & kept & (bold == 0)))


def clean_seal(gray: Image, ring: SealRing, dpi: int, window: Box) -> Image:
    """The ``window`` (x0, y0, x1, y1) of ``gray`` with the seal's ring strokes and lettering turned to paper."""
    x0, y0, x1, y1 = window
    crop = gray[y0:y1, x0:x1].copy()
    marks = _seal_marks(crop < INK_LEVEL, ring, dpi, ring.cx - x0, ring.cy - y0)
    crop[marks] = 255
    return crop


@dataclass(frozen=True)
class TextBand:
    """A line of text crossing a seal: its box on the page (padded), its cleaned image, and the page's own ink
    there (uncleaned: a name read by elimination must be covered by it, ``pipeline.name_match``)."""

    box: Box
    image: Image
    ink: Mask


def seal_text_bands(gray: Image, ring: SealRing, dpi: int) -> list[TextBand]:
    """Lines of ink that run through the seal's ring, cleaned of the seal, top to bottom."""
    h, w = gray.shape[:2]
    mm = _mm(dpi)
    pad = round(BAND_PAD_MM * mm)
    reach = ring.radius + round(BAND_MAX_MM * mm)
    window = (max(0, ring.cx - reach), max(0, ring.cy - reach), min(w, ring.cx + round(BAND_REACH * ring.radius)),
              min(h, ring.cy + reach))
    clean = clean_seal(gray, ring, dpi, window)
    ink = clean < INK_LEVEL
    ys, xs = np.ogrid[window[1] : window[3], window[0] : window[2]]
    inside = np.hypot(xs - ring.cx, ys - ring.cy) < ring.letters[0] - RING_RUN_SLACK
    ink &= ~inside  # the seal's centre (star, inner circle) is not text
    rows = ink.mean(axis=1) >= BAND_ROW_INK
    bands: list[TextBand] = []
    for top, bottom in _runs(rows):
        if not BAND_MIN_MM * mm <= bottom - top <= BAND_MAX_MM * mm:
            continue
        cols = np.flatnonzero(ink[top:bottom].any(axis=0)).tolist()
        y_top, y_bottom = top + window[1], bottom + window[1]
        if not _crosses_ring(ring, y_top, y_bottom, cols[0] + window[0], cols[-1] + window[0]):
            continue
        box = (max(window[0], cols[0] + window[0] - pad), max(window[1], y_top - pad),
               min(window[2], cols[-1] + window[0] + 1 + pad), min(window[3], y_bottom + pad))
        image = clean[box[1] - window[1] : box[3] - window[1], box[0] - window[0] : box[2] - window[0]].copy()
        keep = ink[box[1] - window[1] : box[3] - window[1], box[0] - window[0] : box[2] - window[0]]
        image[~keep] = 255  # only the ink of this band's rows' neighbourhood, the centre wiped
        bands.append(TextBand(box, image, gray[box[1] : box[3], box[0] : box[2]] < INK_LEVEL))
    return bands


def _crosses_ring(ring: SealRing, top: int, bottom: int, left: int, right: int) -> bool:
    """The band's box reaches into the seal's lettering or ring (text the seal could have hidden)."""
    dy = 0 if top <= ring.cy <= bottom else min(abs(top - ring.cy), abs(bottom - ring.cy))
    dx = 0 if left <= ring.cx <= right else min(abs(left - ring.cx), abs(right - ring.cx))
    return math.hypot(dx, dy) <= ring.ring[1] and bottom - top > 0
