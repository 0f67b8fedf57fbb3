"""Text lines the page pass left unread: found in the ink no word covers, to be read again one by one.

Tesseract's page layout analysis sometimes drops a whole region of a real scan: the signature column next to a
seal or a signature's strokes (``CHỦ TỊCH`` / ``Lê Trung Chinh``), the last line of a recipients list above a
handwritten note. The words are on the page, clean, but no block holds them. This stage finds them from the
image: ink that lies outside every word's box (grown by ``COVER_PAD`` word heights) is split into connected
components; components of a character's size (not taller than ``MAX_CHAR`` word heights: seal rings, signature
strokes and rules are not text) are joined along the line (gaps under ``JOIN`` word heights) into line boxes; a
box as high as a text line (``MIN_HEIGHT``..``MAX_HEIGHT`` word heights), at least ``MIN_WIDTH`` word heights
wide and made of ``MIN_PARTS`` components or more is a line the page pass missed, unless it lies inside a ring
(a component ``SEAL_MIN``..``SEAL_MAX`` word heights across with ink on all four sides of it: a seal, whose
lettering is never page text). At most ``MAX_LINES`` a page,
the widest first. The caller reads each box as one line and :func:`add_lines` puts the readings that hold a
plausible word (``pipeline.junk_lines``) into the page, each as a block of its own. Pure: pixels and words in,
boxes and words out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pipeline.junk_lines import is_junk
from pipeline.reread import word_height
from schemas.ocr import OcrPage, OcrWord

Box = tuple[int, int, int, int]

INK_LEVEL = 128  # grey level below which a pixel is ink
COVER_PAD = 0.3  # a word's box grown by this many word heights covers its ink (diacritics, serifs)
MAX_CHAR = 1.8  # a component taller than this many word heights is no character (seal, signature, rule)
MIN_CHAR = 0.2  # ...and one lower and narrower than this is a speck
JOIN = 0.9  # characters closer than this many word heights along a line belong to one line
MIN_HEIGHT = 0.6  # a missed line is this many word heights high at least...
MAX_HEIGHT = 1.9  # ...and at most this many
MIN_WIDTH = 3.0  # ...at least this many word heights wide
MIN_PARTS = 4  # ...and made of at least this many components
MAX_LINES = 6  # per page
SEAL_MIN, SEAL_MAX = 5.0, 30.0  # a ring this many word heights across around a line: the line is a seal's
PAD = 0.35  # white margin around a cut-out line, in word heights
WORK_HEIGHT = 16  # the search runs on the page scaled to about this many pixels a word (a whole factor)


def _uncovered_ink(page: OcrPage, image: np.ndarray, height: float) -> np.ndarray:
    ink = (image < INK_LEVEL).astype(np.uint8)
    pad = round(COVER_PAD * height)
    for word in page.words:
        x0, y0, x1, y1 = word.box
        ink[max(0, y0 - pad) : max(0, y1 + pad), max(0, x0 - pad) : max(0, x1 + pad)] = 0
    return ink


def _characters(ink: np.ndarray, height: float) -> np.ndarray:
    """A mask of the character-sized components of ``ink``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    speck = (h < MIN_CHAR * height) & (w < MIN_CHAR * height)
    keep = (h <= MAX_CHAR * height) & ~speck & (w <= 4 * MAX_CHAR * height)  # not a seal, speck or rule
    keep[0] = False  # the background
    if count <= 1 or not keep.any():
        return np.zeros_like(ink)
    return np.asarray(keep[labels], dtype=np.uint8)


def _extend(box: Box, ink: np.ndarray, gap: int) -> Box:
    """``box`` widened over the uncovered ink of its rows that continues it with gaps under ``gap`` pixels (the
    letters a signature stroke crossing the line joined to a large component)."""
    x0, y0, x1, y1 = box
    columns: np.ndarray = np.asarray(ink[y0:y1].any(axis=0), dtype=bool)
    left = x0
    while left > 0 and columns[max(0, left - gap) : left].any():
        left -= 1 + int(np.flatnonzero(columns[max(0, left - gap) : left][::-1])[0])
    right = x1
    while right < columns.size and columns[right : right + gap].any():
        right += 1 + int(np.flatnonzero(columns[right : right + gap])[-1])
    return (left, y0, right, y1)


def _enclosed(image: np.ndarray, height: float) -> Callable[[Box], bool]:
    """Whether a box lies inside a ring: a component ``SEAL_MIN``..``SEAL_MAX`` word heights across with ink
    on all four sides of the box's middle (a seal, even with a signature's strokes fused to it)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((image < INK_LEVEL).astype(np.uint8), connectivity=8)
    sizes = [(int(stats[i][2]), int(stats[i][3])) for i in range(count)]
    rings = [i for i in range(1, count) if SEAL_MIN * height <= min(sizes[i]) and max(sizes[i]) <= SEAL_MAX * height]

    def inside(box: Box) -> bool:
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        row, column = labels[cy], labels[:, cx]
        return any((row[: box[0]] == i).any() and (row[box[2] :] == i).any() and (column[: box[1]] == i).any()
                   and (column[box[3] :] == i).any() for i in rings)
    return inside


def missed_lines(page: OcrPage, image: np.ndarray) -> list[Box]:
    """Boxes (x0, y0, x1, y1, padded, in ``image`` pixels) of text lines no word of ``page`` covers.

    The search runs on the image scaled down to about ``WORK_HEIGHT`` pixels a word (halving the cost of its
    connected components on a 300-dpi page); the boxes are given back in ``image`` pixels."""
    if not page.words or image.ndim != 2 or image.dtype != np.uint8:  # the grey OCR image only
        return []
    scale = max(1, int(word_height(page) // WORK_HEIGHT))
    if min(image.shape) < 8 * scale:
        return []
    small = image if scale == 1 else cv2.resize(image, (image.shape[1] // scale, image.shape[0] // scale),
                                                 interpolation=cv2.INTER_AREA)
    words = [w.model_copy(update={"box": tuple(v // scale for v in w.box)}) for w in page.words] if scale > 1 else None
    found = _line_boxes(page if words is None else page.model_copy(update={"words": words}), small)
    pad = round(PAD * word_height(page))
    rows, cols = image.shape
    return [(max(0, x0 * scale - pad), max(0, y0 * scale - pad), min(cols, x1 * scale + pad),
             min(rows, y1 * scale + pad)) for x0, y0, x1, y1 in found]


def _line_boxes(page: OcrPage, image: np.ndarray) -> list[Box]:
    """Unpadded boxes of the missed lines, widest first (at most ``MAX_LINES``)."""
    height = word_height(page)
    ink = _uncovered_ink(page, image, height)
    chars = _characters(ink, height)
    if not chars.any():
        return []
    join = max(1, round(JOIN * height))
    joined = cv2.dilate(chars, np.ones((max(1, round(0.25 * height)), join), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    seal_test: list[Callable[[Box], bool]] = []  # built at the first candidate: most pages have none
    found: list[tuple[int, Box]] = []
    for index in range(1, count):
        x, y, w, h = (int(v) for v in stats[index][:4])
        box = (x + join // 2, y, x + w - join // 2, y + h)  # the dilation undone along the line
        bw, bh = box[2] - box[0], box[3] - box[1]
        if not (MIN_HEIGHT * height <= bh <= MAX_HEIGHT * height and bw >= MIN_WIDTH * height):
            continue
        parts, _ = cv2.connectedComponents(chars[box[1] : box[3], box[0] : box[2]], connectivity=8)
        if parts - 1 < MIN_PARTS:
            continue
        seal_test = seal_test or [_enclosed(image, height)]
        if not seal_test[0](box):
            found.append((bw, _extend(box, ink, join)))
    found.sort(key=lambda item: -item[0])
    return [box for _, box in found[:MAX_LINES]]


def add_lines(page: OcrPage, boxes: Sequence[Box], readings: Sequence[Sequence[OcrWord]]) -> tuple[OcrPage, int]:
    """``page`` with the readings of its missed lines (``readings[i]`` in ``boxes[i]``'s cut-out pixels) that are
    not junk, each a block and line of its own, and how many were added."""
    tall = 2.0 * word_height(page)
    block = max((w.block for w in page.words), default=0) + 1
    line = max((w.line for w in page.words), default=0) + 1
    added: list[OcrWord] = []
    count = 0
    for (x0, y0, _x1, _y1), words in zip(boxes, readings, strict=True):
        if not words or is_junk(words, tall):
            continue
        added += [w.model_copy(update={"box": (w.box[0] + x0, w.box[1] + y0, w.box[2] + x0, w.box[3] + y0),
                                       "block": block, "line": line}) for w in words]
        block, line, count = block + 1, line + 1, count + 1
    if not added:
        return page, 0
    words = [*page.words, *added]
    confidence = statistics.fmean(w.confidence for w in words)
    return page.model_copy(update={"words": words, "confidence": confidence}), count
