"""Page cleaning before OCR: upscale, colour-stamp suppression, deskew, border cleaning, background normalisation.

Pure OpenCV/numpy: no file I/O, no subprocess, no environment. Every step is decided from measured properties of
the page itself (resolution, skew angle, coloured-ink regions, dark border regions, paper level, ink darkness,
speckle density) and recorded in ``PreprocessedPage.steps`` as provenance. The display image only receives the
geometric steps (upscale, deskew), so seals and stamps stay visible in the archived page.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Mask = NDArray[np.bool_]

TARGET_DPI = 300
MIN_DPI = 250  # pages below this are upscaled to TARGET_DPI
MAX_SKEW_DEG = 15.0
MIN_SKEW_DEG = 0.15  # smaller skew is left alone (a rotation blurs the glyphs a little)
CHROMA_MIN = 40  # white-balanced max-min channel spread of coloured ink on a ~75 dpi copy
SEAL_MIN_MM = 20.0  # a seal is a round coloured blob at least this wide and tall
STAMP_MIN_MM = 5.0  # a kept stamp is a filled box at least this tall
SEAL_FILL = (0.65, 0.9)  # filled area / bounding box area of a round blob (disc: pi/4; box: 1)
OVER_TEXT_MIN = 0.005  # share of dark neutral ink under a coloured blob that marks it as covering text
COLOUR_TEXT_SHARE = 0.5  # coloured share of all ink above which colour is the text itself: keep it
BORDER_DENSITY = 0.3  # dark share in a ~5 mm window for an edge region to count as a dark band
PAPER_MIN_LEVEL = 235  # paper darker than this gets background normalisation
FAINT_INK_LEVEL = 130  # ink lighter than this is faint: broken strokes get closed
SPECKS_PER_SQ_INCH = 50.0  # isolated dark pixels above this density trigger a median filter


@dataclass(frozen=True)
class PreprocessedPage:
    """Result of ``preprocess_page``: the image tesseract reads, the colour page layer, and provenance."""

    ocr_image: Image
    display_image: Image
    dpi: int
    steps: dict[str, object]


def to_bgr(image: NDArray[np.uint8]) -> Image:
    """Return a 3-channel BGR copy of a grayscale, BGR or BGRA page."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def upscale_to(image: Image, dpi: int, target_dpi: int) -> Image:
    """Resample ``image`` from ``dpi`` to ``target_dpi`` with bicubic interpolation."""
    f = target_dpi / dpi
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)


def shrink(image: Image, dpi: int, target_dpi: int) -> Image:
    """Area-averaged copy of ``image`` at about ``target_dpi`` (never enlarged)."""
    f = min(1.0, target_dpi / dpi)
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def paper_colour(bgr: Image) -> NDArray[np.float32]:
    """Per-channel paper colour: the 90th percentile of a downscaled copy (pages are mostly paper)."""
    small = cv2.resize(bgr, None, fx=0.125, fy=0.125, interpolation=cv2.INTER_AREA)
    return np.percentile(small.reshape(-1, 3), 90, axis=0).astype(np.float32)


def white_balance(bgr: Image, paper: NDArray[np.float32]) -> Image:
    """Scale each channel so the paper becomes neutral white."""
    gains = 255.0 / np.maximum(paper, 1.0)
    return cv2.transform(bgr, np.diag(gains).astype(np.float32))


def fill_holes(mask: Image) -> Image:
    """Fill the enclosed holes of a 0/1 mask (a seal ring becomes a disc)."""
    pad = np.pad((mask == 0).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(pad, None, (0, 0), 2)
    return (pad[1:-1, 1:-1] != 2).astype(np.uint8)


@dataclass(frozen=True)
class InkBlob:
    """A coloured-ink region: its box in page pixels, whether it is red, and whether OCR should drop it."""

    box: tuple[int, int, int, int]
    red: bool
    drop: bool
    framed: bool


def is_red(hue: Image) -> Mask:
    """OpenCV hue (0-179) in the red range."""
    return (hue < 15) | (hue > 155)


def find_colour_blobs(bgr: Image, dpi: int, paper: NDArray[np.float32]) -> tuple[list[InkBlob], float]:
    """Coloured-ink blobs of the page and the coloured share of all ink.

    On a white-balanced ~75 dpi copy, red and other coloured ink are grouped separately into blobs. A blob is
    dropped from the OCR image when it is seal-like (round, at least ``SEAL_MIN_MM`` across) or lies over dark
    neutral text (seals, received-stamps, signatures); other blobs, such as the "MẬT" / "KHẨN" stamps, are kept so
    they can still be read. When coloured ink is most of the page's ink it is the text itself: no blobs.
    """
    small = white_balance(shrink(bgr, dpi, 75), paper)
    f = small.shape[1] / bgr.shape[1]
    hi = small.max(axis=2).astype(np.int16)
    chroma = hi - small.min(axis=2)
    colour = chroma >= CHROMA_MIN
    dark = (hi < 200) & (chroma < CHROMA_MIN // 2)
    share = float(colour.sum()) / max(1, int(colour.sum() + dark.sum()))
    if share > COLOUR_TEXT_SHARE:
        return [], share
    red = colour & is_red(cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[..., 0])
    mm = 25.4 / (dpi * f)
    blobs: list[InkBlob] = []
    for group_is_red, group in ((True, red), (False, colour & ~red)):
        filled = fill_holes(cv2.dilate(group.astype(np.uint8), np.ones((5, 5), np.uint8)))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < 20:
                continue
            fill = area / (w * h)
            seal_like = min(w, h) * mm >= SEAL_MIN_MM and SEAL_FILL[0] <= fill <= SEAL_FILL[1]
            framed = min(w, h) * mm >= STAMP_MIN_MM and fill > SEAL_FILL[1]
            inside = labels[y:y + h, x:x + w] == i
            over_text = float(dark[y:y + h, x:x + w][inside].mean()) >= OVER_TEXT_MIN
            box = (round((x - 2) / f), round((y - 2) / f), round((w + 4) / f), round((h + 4) / f))
            blobs.append(InkBlob(box=box, red=group_is_red, drop=seal_like or over_text, framed=framed))
    return blobs, share


def recolour_ink(bgr: Image, gray: Image, blobs: list[InkBlob], paper: NDArray[np.float32]) -> Image:
    """Give the coloured pixels of each blob the grey level OCR should see.

    Dropped blobs take their brightest channel: coloured ink is transparent in its own colour's channel (red ink in
    the red channel), so seals fade into the paper while black text under them stays dark in every channel. Kept
    framed blobs (boxed stamps) take their darkest channel, contrast-stretched, so a red "MẬT" stamp reads as dark as
    black text.
    """
    out = gray.copy()
    for blob in blobs:
        if not (blob.drop or blob.framed):
            continue
        x, y, w, h = blob.box
        x0, y0, x1, y1 = max(0, x), max(0, y), min(gray.shape[1], x + w), min(gray.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            continue
        wb = white_balance(bgr[y0:y1, x0:x1], paper)
        hi, lo = wb.max(axis=2), wb.min(axis=2)
        weight = np.clip((hi.astype(np.float32) - lo - CHROMA_MIN / 2) / (CHROMA_MIN / 2), 0.0, 1.0)
        weight[is_red(cv2.cvtColor(wb, cv2.COLOR_BGR2HSV)[..., 0]) != blob.red] = 0.0
        region = out[y0:y1, x0:x1].astype(np.float32)
        if blob.drop:
            target = hi.astype(np.float32)
        else:  # darkest channel, stretched so the stamp's ink is as dark as black text
            ink = lo[weight >= 1.0]
            depth = 255.0 - float(np.percentile(ink, 10)) if ink.size else 255.0
            target = 255.0 - (255.0 - lo.astype(np.float32)) * min(3.0, 225.0 / max(depth, 1.0))
        out[y0:y1, x0:x1] = np.clip(region + (target - region) * weight, 0, 255).astype(np.uint8)
    return out


def ink_mask(gray: Image) -> Image:
    """Binary mask (255 = ink) of a small grayscale page via a local mean threshold."""
    block = max(15, (min(gray.shape[:2]) // 20) | 1)
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)


def _profile_scores(xs: NDArray[np.float64], ys: NDArray[np.float64], angles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sum of squared row-projection counts of ink points for each candidate angle (sharp rows score high)."""
    scores = np.empty(len(angles))
    for i, a in enumerate(np.deg2rad(angles)):
        proj = ys * np.cos(a) + xs * np.sin(a)
        counts = np.bincount(np.rint(proj - proj.min()).astype(np.int64)).astype(np.float64)
        scores[i] = float(np.dot(counts, counts))
    return scores


def estimate_skew(gray: Image, dpi: int, max_deg: float = MAX_SKEW_DEG) -> float:
    """Text-line skew in degrees (positive = content rotated counter-clockwise as displayed).

    Projection-profile search on a binarised downscaled copy: a coarse pass at ~50 dpi over ±``max_deg``, then a
    fine pass at ~100 dpi around the best coarse angle, with parabolic interpolation of the peak.
    """
    best = 0.0
    for res, step, span in ((50, 0.5, max_deg), (100, 0.05, 0.6)):
        ys, xs = np.nonzero(ink_mask(shrink(gray, dpi, res)))
        if len(xs) < 50:
            return 0.0
        angles = np.arange(best - span, best + span + step / 2, step)
        scores = _profile_scores(xs.astype(np.float64), ys.astype(np.float64), angles)
        k = int(np.argmax(scores))
        best = float(angles[k])
        if 0 < k < len(angles) - 1:
            s0, s1, s2 = scores[k - 1], scores[k], scores[k + 1]
            denom = s0 - 2 * s1 + s2
            if denom < 0:
                best += step * 0.5 * (s0 - s2) / denom
    return float(np.clip(best, -max_deg, max_deg))


def deskew(image: Image, angle_deg: float, fill: tuple[float, ...]) -> Image:
    """Rotate ``image`` by ``-angle_deg`` about its centre, keeping its size; uncovered corners get ``fill``."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -angle_deg, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=fill)


def dark_border_mask(gray: Image, dpi: int, paper: float) -> Image:
    """Full-size mask (255) of large dark regions touching the page edge (binding shadows, scanner lid)."""
    small = shrink(gray, dpi, 50)
    density = cv2.blur((small < paper * 0.5).astype(np.float32), (5, 5))  # ~2.5 mm window
    band = (density > BORDER_DENSITY).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8)
    h, w = band.shape
    keep = np.zeros(n, dtype=bool)
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        keep[i] = touches and max(bw / w, bh / h) > 0.1
    mask = cv2.dilate((keep[labels] * 255).astype(np.uint8), np.ones((5, 5), np.uint8))
    return cv2.resize(mask, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)


def normalize_background(gray: Image, dpi: int) -> Image:
    """Divide by a smooth paper estimate (max filter + median on a ~75 dpi copy): paper becomes white."""
    small = shrink(gray, dpi, 75)
    bg = cv2.medianBlur(cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))), 9)
    bg = cv2.resize(bg, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(gray, np.maximum(bg, 1), scale=255)


def close_broken_strokes(gray: Image) -> Image:
    """Grayscale opening (3x3): fills pinholes and cracks in faint strokes without thickening them."""
    return cv2.morphologyEx(gray, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def ink_level(gray: Image) -> float:
    """Typical darkness of ink: the 20th percentile of pixels clearly darker than the paper."""
    small = gray[::4, ::4]
    paper = float(np.percentile(small, 90))
    ink = small[small < paper * 0.8]
    return float(np.percentile(ink, 20)) if ink.size else paper


def speck_density(gray: Image, dpi: int) -> float:
    """Isolated dark pixels (no dark 8-neighbour) per square inch: salt-and-pepper scanner noise."""
    dark = (gray < 128).astype(np.uint8)
    neighbours = cv2.boxFilter(dark, cv2.CV_8U, (3, 3), normalize=False)
    return float(np.count_nonzero((dark == 1) & (neighbours == 1)) / (gray.size / dpi**2))


def preprocess_page(image: NDArray[np.uint8], dpi: int) -> PreprocessedPage:
    """Clean one scanned page for OCR.

    image: uint8 BGR (3-channel) or grayscale page as loaded from the scan; dpi: its resolution (300 if unknown).
    """
    dpi = int(dpi) if dpi and dpi > 0 else TARGET_DPI
    steps: dict[str, object] = {"input_dpi": dpi}
    bgr = to_bgr(image)
    if dpi < MIN_DPI:
        bgr = upscale_to(bgr, dpi, TARGET_DPI)
        steps["upscaled_from"] = dpi
        dpi = TARGET_DPI
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    paper = paper_colour(bgr)

    blobs, share = find_colour_blobs(bgr, dpi, paper)
    steps["colour_ink_share"] = round(share, 3)
    steps["red_removed"] = any(b.drop and b.red for b in blobs)
    steps["colour_removed"] = any(b.drop and not b.red for b in blobs)
    steps["stamp_boxes"] = [list(b.box) for b in blobs if b.framed and not b.drop]
    if blobs:
        gray = recolour_ink(bgr, gray, blobs, paper)

    skew = estimate_skew(gray, dpi)
    steps["skew_deg"] = round(skew, 2)
    steps["deskewed"] = bool(abs(skew) >= MIN_SKEW_DEG)
    if steps["deskewed"]:
        bgr = deskew(bgr, skew, tuple(float(c) for c in paper))
        gray = deskew(gray, skew, (float(np.mean(paper)),))

    border = dark_border_mask(gray, dpi, float(np.percentile(gray[::8, ::8], 90)))
    steps["dark_border_fraction"] = round(float(np.count_nonzero(border)) / border.size, 4)
    if np.any(border):
        gray[border > 0] = 255

    paper_level = float(np.percentile(gray[::8, ::8], 90))
    steps["paper_level"] = round(paper_level, 1)
    steps["background_normalized"] = bool(paper_level < PAPER_MIN_LEVEL)
    if steps["background_normalized"]:
        gray = normalize_background(gray, dpi)

    ink = ink_level(gray)
    steps["ink_level"] = round(ink, 1)
    steps["strokes_closed"] = bool(ink > FAINT_INK_LEVEL)
    if steps["strokes_closed"]:
        gray = close_broken_strokes(gray)

    specks = speck_density(gray, dpi)
    steps["specks_per_sq_inch"] = round(specks, 1)
    steps["despeckled"] = bool(specks > SPECKS_PER_SQ_INCH)
    if steps["despeckled"]:
        gray = cv2.medianBlur(gray, 3)

    return PreprocessedPage(ocr_image=gray, display_image=bgr, dpi=dpi, steps=steps)
