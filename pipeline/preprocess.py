"""Page cleaning before OCR: upscale, colour-ink handling, deskew, background normalisation, border cleaning.

Pure OpenCV/numpy: no file I/O, no subprocess, no environment. Every step is decided from measured properties of
the page itself (resolution, coloured-ink blobs, skew angle, paper brightness and shading, dark edge regions, ink
darkness, speckle density) and recorded in ``PreprocessedPage.steps``. The display image only receives the
geometric steps (upscale, deskew), so seals, stamps and signatures stay visible in the archived page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Mask = NDArray[np.bool_]
Floats = NDArray[np.float64]

TARGET_DPI = 300
MIN_DPI = 250  # pages below this are upscaled to TARGET_DPI
MAX_SKEW_DEG = 15.0
MIN_SKEW_DEG = 0.15  # smaller skew is left alone (a rotation blurs the glyphs a little)
CHROMA_MIN = 40  # white-balanced max-min channel spread of coloured ink (on a ~75 dpi copy)
COLOUR_TEXT_SHARE = 0.5  # coloured share of all ink above which colour is the text itself: leave it alone
SEAL_MIN_MM = 20.0  # a seal is a round coloured blob at least this wide and tall
SEAL_ROUNDNESS = 0.85  # overlap of a seal with the ellipse inscribed in its box (disc: 1, box: 0.79)
STAMP_MIN_MM = 5.0  # a boxed stamp ("MẬT", "KHẨN") is at least this tall...
STAMP_MIN_FILL = 0.9  # ...and fills its box
STROKES_MAX_FILL = 0.5  # a coloured blob filling less of its box is handwriting (signature), not print
OVER_TEXT_MIN = 0.005  # share of dark neutral ink under a coloured blob that marks it as covering text
FADE_KEEP = 110.0  # in a dropped blob, coloured ink whose brightest channel is below this is black text under it...
FADE_WHITE = 200.0  # ...above this it is the seal's own ink (fully faded to paper); linear in between
PAPER_MIN_LEVEL = 235  # paper darker than this gets background normalisation...
SHADED_MIN_FRACTION = 0.002  # ...and so does a page with more shadow than this (paper < 80 % of its median)
BORDER_DENSITY = 0.3  # dark share in a ~2.5 mm window for an edge region to count as a dark band
FAINT_INK_LEVEL = 130  # ink lighter than this is faint: its broken strokes are closed
SPECKS_PER_SQ_INCH = 20.0  # isolated dark pixels above this density trigger a 3x3 median


@dataclass(frozen=True)
class PreprocessedPage:
    """Result of ``preprocess_page``: the image tesseract reads, the colour page layer, and provenance."""

    ocr_image: np.ndarray  # uint8 grayscale, what tesseract reads
    display_image: np.ndarray  # uint8 BGR page, same geometry as ocr_image
    dpi: int  # resolution of both images
    steps: dict[str, object]  # what was measured and applied (JSON-serialisable)


@dataclass(frozen=True)
class InkBlob:
    """A coloured-ink region: box (x, y, w, h) in page pixels, its colour group and what OCR should do with it."""

    box: tuple[int, int, int, int]
    red: bool
    drop: bool  # seal, received-stamp or signature: fade it out of the OCR image
    framed: bool  # boxed stamp: darken it so it reads like black text
    seal: bool = False  # round seal: its region's OCR text is never page text (``pipeline.junk_lines``)


def _u8(image: Any) -> Image:
    """View an OpenCV result as a uint8 array (no copy)."""
    return np.asarray(image, dtype=np.uint8)


def to_bgr(image: Image) -> Image:
    """A 3-channel BGR page from a grayscale, BGR or BGRA one: a BGR page is not copied (a page-sized buffer less
    while it is read, issue 21.3) but given as a read-only view, so no step can change the caller's page."""
    if image.ndim == 2:
        return _u8(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.shape[2] == 4:
        return _u8(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR))
    view = image.view()
    view.flags.writeable = False
    return view


def upscale_to(image: Image, dpi: int, target_dpi: int) -> Image:
    """Resample ``image`` from ``dpi`` to ``target_dpi`` with bicubic interpolation."""
    f = target_dpi / dpi
    return _u8(cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC))


def shrink(image: Image, dpi: int, target_dpi: int) -> Image:
    """Area-averaged copy of ``image`` at about ``target_dpi`` (never enlarged, at least 1x1).

    Large reductions first halve the image with ``pyrDown`` (fast) while it stays over twice the target size,
    then area-average to the exact size.
    """
    f = min(1.0, target_dpi / dpi)
    size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    while image.shape[1] >= 4 * size[0] and image.shape[0] >= 4 * size[1]:
        image = _u8(cv2.pyrDown(image))
    return _u8(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def paper_colour(bgr: Image, dpi: int) -> NDArray[np.float32]:
    """Per-channel paper colour: the 90th percentile of a ~40 dpi copy (pages are mostly paper)."""
    small = shrink(bgr, dpi, 40)
    return np.asarray(np.percentile(small.reshape(-1, 3), 90, axis=0), dtype=np.float32)


def white_balance(bgr: Image, paper: NDArray[np.float32]) -> Image:
    """Scale each channel so that the paper becomes neutral white."""
    return _u8(cv2.transform(bgr, np.diag(255.0 / np.maximum(paper, 1.0)).astype(np.float32)))


def is_red(bgr: Image) -> Mask:
    """Pixels whose hue is red (OpenCV hue 0-179 wraps around red)."""
    hue = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)[..., 0]
    return np.asarray((hue < 15) | (hue > 155), dtype=np.bool_)


def fill_holes(mask: Image) -> Image:
    """Fill the enclosed holes of a 0/1 mask (a seal ring becomes a disc, a stamp frame a box)."""
    pad = np.pad((mask == 0).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(pad, None, (0, 0), 2)
    return _u8(pad[1:-1, 1:-1] != 2)


def roundness(inside: Mask) -> float:
    """Intersection over union of a blob with the ellipse inscribed in its box: 1 for a disc, pi/4 for a box."""
    h, w = inside.shape
    ellipse = np.zeros((h, w), np.uint8)
    cv2.ellipse(ellipse, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
    union = int(np.count_nonzero(inside | (ellipse == 1)))
    return int(np.count_nonzero(inside & (ellipse == 1))) / max(1, union)


def find_colour_blobs(bgr: Image, dpi: int, paper: NDArray[np.float32]) -> tuple[list[InkBlob], float]:
    """Coloured-ink blobs of the page, and the coloured share of all ink.

    On a white-balanced ~75 dpi copy, red and other coloured ink are grouped separately into blobs (holes filled).
    A blob is dropped from the OCR image when it is a seal (round, at least ``SEAL_MIN_MM`` across), lies over dark
    neutral text (received-stamps) or is made of sparse strokes (signatures, handwriting); boxed stamps such as
    "MẬT" / "KHẨN" are kept and darkened. When coloured ink is most of the ink it is the text: only seals count.
    """
    small = white_balance(shrink(bgr, dpi, 75), paper)
    f = small.shape[1] / bgr.shape[1]
    hi = small.max(axis=2).astype(np.int16)
    chroma = hi - small.min(axis=2)
    colour = chroma >= CHROMA_MIN
    dark = (hi < 200) & (chroma < CHROMA_MIN // 2)
    n_colour = int(colour.sum())
    share = n_colour / max(1, n_colour + int(dark.sum()))
    red = colour & is_red(small)
    mm = 25.4 / (dpi * f)
    blobs: list[InkBlob] = []
    for group_is_red, group in ((True, red), (False, colour & ~red)):
        filled = fill_holes(_u8(cv2.dilate(group.astype(np.uint8), np.ones((5, 5), np.uint8))))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < 20:
                continue
            inside = labels[y : y + h, x : x + w] == i
            seal = min(w, h) * mm >= SEAL_MIN_MM and roundness(inside) >= SEAL_ROUNDNESS
            if share > COLOUR_TEXT_SHARE and not seal:
                continue
            fill = area / (w * h)
            over_text = float(dark[y : y + h, x : x + w][inside].mean()) >= OVER_TEXT_MIN
            drop = seal or over_text or fill < STROKES_MAX_FILL
            framed = min(w, h) * mm >= STAMP_MIN_MM and fill >= STAMP_MIN_FILL
            box = (round((x - 2) / f), round((y - 2) / f), round((w + 4) / f), round((h + 4) / f))
            blobs.append(InkBlob(box=box, red=group_is_red, drop=drop, framed=framed, seal=seal))
    return blobs, share


def recolour_ink(bgr: Image, gray: Image, blobs: list[InkBlob], paper: NDArray[np.float32]) -> Image:
    """Give the coloured pixels of each dropped or framed blob the grey level OCR should see.

    Dropped blobs take their brightest channel: coloured ink is transparent in its own colour's channel (red ink in
    the red channel), so seals fade into the paper while black text under them stays dark in every channel. That
    channel is then stretched above ``FADE_KEEP`` (``FADE_WHITE`` and brighter become white) so the seal's
    lettering and rings, never as bright as the paper in a real scan, leave no grey residue for the binariser;
    pixels next to black text (darker than ``FADE_KEEP`` in every channel) are not stretched, so its strokes
    keep their width.
    Framed blobs take their darkest channel, contrast-stretched, so a red "MẬT" stamp reads like black text.
    """
    out = gray.copy()
    paper_grey = float(np.dot(paper, [0.114, 0.587, 0.299]))  # the paper's level in ``gray`` (BGR weights)
    for blob in blobs:
        x, y, w, h = blob.box
        x0, y0, x1, y1 = max(0, x), max(0, y), min(gray.shape[1], x + w), min(gray.shape[0], y + h)
        if not (blob.drop or blob.framed) or x1 <= x0 or y1 <= y0:
            continue
        wb = white_balance(bgr[y0:y1, x0:x1], paper)
        hi, lo = wb.max(axis=2).astype(np.float32), wb.min(axis=2).astype(np.float32)
        weight = np.clip((hi - lo - CHROMA_MIN / 2) / (CHROMA_MIN / 2), 0.0, 1.0)
        weight[is_red(wb) != blob.red] = 0.0  # leave the other colour group's ink alone
        if blob.drop:
            stretched = FADE_KEEP + (hi - FADE_KEEP) * ((255.0 - FADE_KEEP) / (FADE_WHITE - FADE_KEEP))
            text = _u8(cv2.dilate((hi < FADE_KEEP).astype(np.uint8), np.ones((3, 3), np.uint8))) > 0
            target = np.where(text, hi, np.minimum(stretched, 255.0))  # text under the seal keeps its edges
            target = target * (paper_grey / 255.0)  # white-balanced white is the paper's grey in ``gray``
        else:
            ink = lo[weight >= 1.0]
            depth = 255.0 - float(np.percentile(ink, 10)) if ink.size else 255.0
            target = 255.0 - (255.0 - lo) * min(3.0, 225.0 / max(depth, 1.0))
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region + (target - region) * weight, 0, 255).astype(np.uint8)
    return out


def _profile_scores(xs: Floats, ys: Floats, angles: Floats) -> Floats:
    """Sum of squared row-projection counts of ink points for each candidate angle (sharp text rows score high)."""
    scores = np.empty(len(angles))
    for i, a in enumerate(np.deg2rad(angles)):
        proj = ys * np.cos(a) + xs * np.sin(a)
        counts = np.bincount(np.rint(proj - proj.min()).astype(np.int64)).astype(np.float64)
        scores[i] = float(np.dot(counts, counts))
    return scores


def estimate_skew(gray: Image, dpi: int, max_deg: float = MAX_SKEW_DEG) -> float:
    """Text-line skew in degrees (positive = content rotated counter-clockwise as displayed).

    Projection-profile search over ink pixels of an adaptively binarised downscaled copy: a coarse pass at ~50 dpi
    over ±``max_deg`` in 0.5° steps, then a fine pass at ~100 dpi in 0.05° steps with parabolic peak refinement.
    """
    best = 0.0
    for res, step, span in ((50, 0.5, max_deg), (100, 0.05, 0.6)):
        small = shrink(gray, dpi, res)
        block = max(15, (min(small.shape) // 20) | 1)
        ink = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
        ys, xs = np.nonzero(ink)
        if len(xs) < 50:
            return 0.0
        angles = np.arange(best - span, best + span + step / 2, step)
        scores = _profile_scores(xs.astype(np.float64), ys.astype(np.float64), angles)
        k = int(np.argmax(scores))
        best = float(angles[k])
        if 0 < k < len(angles) - 1:
            s0, s1, s2 = scores[k - 1], scores[k], scores[k + 1]
            if s0 - 2 * s1 + s2 < 0:
                best += step * 0.5 * (s0 - s2) / (s0 - 2 * s1 + s2)
    return float(np.clip(best, -max_deg, max_deg))


def deskew(image: Image, angle_deg: float, fill: tuple[float, ...]) -> Image:
    """Rotate ``image`` by ``-angle_deg`` about its centre, keeping its size; uncovered corners get ``fill``."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -angle_deg, 1.0)
    return _u8(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill))


def rotate_box(box: tuple[int, int, int, int], angle_deg: float, shape: tuple[int, ...]) -> list[int]:
    """The box (x, y, w, h) enclosing ``box`` after ``deskew`` by ``angle_deg`` of an image of ``shape``."""
    x, y, w, h = box
    m = cv2.getRotationMatrix2D((shape[1] / 2, shape[0] / 2), -angle_deg, 1.0)
    corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], dtype=np.float64) @ m.T
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return [round(x0), round(y0), round(x1 - x0), round(y1 - y0)]


def estimate_background(gray: Image, dpi: int) -> Image:
    """Paper brightness without the ink on a ~75 dpi grid: max filter (~3 mm) then median (~3 mm)."""
    small = shrink(gray, dpi, 75)
    return _u8(cv2.medianBlur(cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))), 9))


def normalize_background(gray: Image, background: Image) -> Image:
    """Divide by the upsampled background estimate: tinted paper, gradients and shadows become white."""
    bg = cv2.resize(background, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _u8(cv2.divide(gray, np.maximum(bg, 1), scale=255))


def dark_border_mask(gray: Image, dpi: int) -> Image:
    """Full-size 0/255 mask of large dark regions touching the page edge (binding shadow, scanner lid).

    Expects white paper (``normalize_background`` has run if the page was shaded).
    """
    small = shrink(gray, dpi, 50)
    band = (cv2.blur((small < 128).astype(np.float32), (5, 5)) > BORDER_DENSITY).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8)
    h, w = band.shape
    keep = np.zeros(n, dtype=bool)
    for i in range(1, n):  # long, edge-touching, but not most of the page (a dark or inverted scan)
        x, y, bw, bh, area = (int(v) for v in stats[i])
        edge = x == 0 or y == 0 or x + bw == w or y + bh == h
        keep[i] = edge and max(bw / w, bh / h) > 0.1 and area < 0.5 * h * w
    mask = cv2.dilate((keep[labels] * 255).astype(np.uint8), np.ones((5, 5), np.uint8))
    return _u8(cv2.resize(mask, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST))


def ink_level(gray: Image) -> float | None:
    """Typical darkness of the ink: the 20th percentile of pixels clearly darker than the paper (None: no ink)."""
    small = gray[::4, ::4]
    ink = small[small < 0.8 * float(np.percentile(small, 90))]
    return float(np.percentile(ink, 20)) if ink.size else None


def close_broken_strokes(gray: Image) -> Image:
    """Grayscale opening (3x3): fills pinholes and cracks in faint strokes without thickening them."""
    return _u8(cv2.morphologyEx(gray, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))


def speck_density(gray: Image, dpi: int) -> float:
    """Isolated dark pixels (no dark 8-neighbour) per square inch: salt-and-pepper scanner noise."""
    dark = _u8(cv2.threshold(gray, 127, 1, cv2.THRESH_BINARY_INV)[1])  # 1 where gray < 128, no bool copy
    marks = _u8(cv2.boxFilter(dark, cv2.CV_8U, (3, 3), normalize=False))  # dark pixels in each 3x3 (0-9)
    cv2.scaleAdd(dark, 16.0, marks, dst=marks)  # 17: dark, alone in its 3x3
    return float(np.count_nonzero(marks == 17)) / (gray.size / dpi**2)


def preprocess_page(image: np.ndarray, dpi: int) -> PreprocessedPage:
    """Clean one scanned page for OCR.

    image: uint8 BGR (3-channel) or grayscale page as loaded from the scan; dpi: its resolution (assume 300 if
    unknown; values <= 0 are treated as unknown).
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 grayscale or BGR image, got {image.dtype} with shape {image.shape}")
    dpi = int(dpi) if dpi and dpi > 0 else TARGET_DPI
    steps: dict[str, object] = {"input_dpi": dpi}
    bgr = to_bgr(image)
    if dpi < MIN_DPI:
        bgr = upscale_to(bgr, dpi, TARGET_DPI)
        steps["upscaled_from"] = dpi
        dpi = TARGET_DPI
    gray = _u8(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    paper = paper_colour(bgr, dpi)

    blobs, share = find_colour_blobs(bgr, dpi, paper)
    steps["colour_ink_share"] = round(share, 3)
    steps["red_removed"] = any(b.drop and b.red for b in blobs)
    steps["colour_removed"] = any(b.drop and not b.red for b in blobs)
    if blobs:
        gray = recolour_ink(bgr, gray, blobs, paper)

    skew = estimate_skew(gray, dpi)
    steps["skew_deg"] = round(skew, 2)
    steps["deskewed"] = abs(skew) >= MIN_SKEW_DEG
    if steps["deskewed"]:
        bgr = deskew(bgr, skew, tuple(float(c) for c in paper))
        gray = deskew(gray, skew, (float(np.mean(paper)),))
    angle = skew if steps["deskewed"] else 0.0
    steps["stamp_boxes"] = [rotate_box(b.box, angle, bgr.shape) for b in blobs if b.framed and not b.drop]
    steps["seal_boxes"] = [rotate_box(b.box, angle, bgr.shape) for b in blobs if b.seal]

    background = estimate_background(gray, dpi)
    paper_level = float(np.median(background))
    shaded = float(np.mean(background < 0.8 * paper_level))
    steps["paper_level"] = round(paper_level, 1)
    steps["shaded_fraction"] = round(shaded, 4)
    steps["background_normalized"] = paper_level < PAPER_MIN_LEVEL or shaded > SHADED_MIN_FRACTION
    if steps["background_normalized"]:
        gray = normalize_background(gray, background)

    border = dark_border_mask(gray, dpi)
    steps["dark_border_fraction"] = round(float(np.count_nonzero(border)) / border.size, 4)
    if np.any(border):
        gray = gray.copy()
        gray[border > 0] = 255

    ink = ink_level(gray)
    steps["ink_level"] = None if ink is None else round(ink, 1)
    steps["strokes_closed"] = ink is not None and ink > FAINT_INK_LEVEL
    if steps["strokes_closed"]:
        gray = close_broken_strokes(gray)

    specks = speck_density(gray, dpi)
    steps["specks_per_sq_inch"] = round(specks, 1)
    steps["despeckled"] = specks > SPECKS_PER_SQ_INCH
    if steps["despeckled"]:
        gray = _u8(cv2.medianBlur(gray, 3))

    return PreprocessedPage(ocr_image=gray, display_image=bgr, dpi=dpi, steps=steps)
