"""Review beside the scan: the lines of a page the OCR was least sure of, replacing one line of a page's text, and
the geometry of a crop of the page image. Pure (no I/O); the image crop itself is ``crop_jpeg``.

The lines come from a page's stored hOCR (``ocr_models.hocr.words_from_hocr``: words with their line, block, box
and confidence). A line is paired with a line of the page's CURRENT text (the machine reading or an archivist's
correction) by aligning the two (equal lines, and the lines of a changed run of the same length, pair up). A
doubtful line whose text line cannot be found is not offered (the page textarea still holds everything).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from PIL import Image

from schemas.ocr import OcrWord

Box = tuple[int, int, int, int]

DOUBT_BELOW = 0.90  # a line whose mean word confidence is under this is offered for review
MAX_LINES = 8  # at most this many doubtful lines per page
CROP_MARGIN = 6  # pixels of the OCR image around a box
MAX_CROP_SIDE = 1600  # pixels of the returned crop (long side)


@dataclass(frozen=True)
class LineReading:
    """One hOCR line: its text (words joined by spaces), mean word confidence and box (OCR pixels)."""

    text: str
    confidence: float
    box: Box


@dataclass(frozen=True)
class DoubtfulLine:
    """A doubtful line of page ``page``: ``index`` of its line in the page text (``text``: that line now),
    ``machine`` what the OCR read there, its confidence and box (OCR pixels)."""

    page: int
    index: int
    text: str
    machine: str
    confidence: float
    box: Box


def line_readings(words: Iterable[OcrWord]) -> list[LineReading]:
    """The page's lines in engine reading order (words grouped by block and line)."""
    grouped: dict[tuple[int, int], list[OcrWord]] = {}
    for word in words:
        grouped.setdefault((word.block, word.line), []).append(word)
    out = []
    for line in grouped.values():
        box = union([w.box for w in line])
        conf = sum(w.confidence for w in line) / len(line)
        out.append(LineReading(text=" ".join(w.text for w in line), confidence=round(conf, 3), box=box))
    return out


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _norm(text: str) -> str:
    return " ".join(text.split())


def pair_lines(readings: list[LineReading], text_lines: list[str]) -> list[int | None]:
    """For each reading, the index of its line in ``text_lines`` (``None``: not found): the non-empty text lines are
    aligned with the readings (``difflib``); equal lines pair, and so do the lines of a replaced run of the same
    length (a line an archivist corrected keeps its place)."""
    filled = [i for i, line in enumerate(text_lines) if line.strip()]
    matcher = SequenceMatcher(None, [_norm(r.text) for r in readings], [_norm(text_lines[i]) for i in filled],
                              autojunk=False)
    out: list[int | None] = [None] * len(readings)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and a1 - a0 == b1 - b0):
            for k in range(a1 - a0):
                out[a0 + k] = filled[b0 + k]
    return out


def doubtful_lines(page: int, words: Iterable[OcrWord], page_text: str, *, below: float = DOUBT_BELOW,
                   limit: int = MAX_LINES) -> list[DoubtfulLine]:
    """The page's lines whose mean word confidence is under ``below``, least confident first (at most ``limit``),
    each paired with its line of ``page_text``; a line with no letter or digit is left out."""
    readings = line_readings(words)
    text_lines = page_text.split("\n")
    out = []
    for reading, index in zip(readings, pair_lines(readings, text_lines), strict=True):
        if index is None or reading.confidence >= below or not any(c.isalnum() for c in reading.text):
            continue
        out.append(DoubtfulLine(page=page, index=index, text=text_lines[index], machine=reading.text,
                                confidence=reading.confidence, box=reading.box))
    out.sort(key=lambda d: (d.confidence, d.index))
    return out[:limit]


class LineChanged(ValueError):
    """The line is no longer what the form showed (the page was corrected since)."""


def replace_line(page_text: str, index: int, expected: str, new: str) -> str:
    """``page_text`` with line ``index`` (expected to read ``expected``) replaced by ``new`` (one line)."""
    lines = page_text.split("\n")
    if not 0 <= index < len(lines) or _norm(lines[index]) != _norm(expected):
        raise LineChanged(index)
    lines[index] = " ".join(new.split())
    return "\n".join(lines)


def crop_region(box: Box, ocr_size: tuple[int, int], image_size: tuple[int, int],
                margin: int = CROP_MARGIN) -> Box | None:
    """``box`` (pixels of the OCR image of ``ocr_size``) in pixels of the page image of ``image_size``, with a
    margin, clipped to the image; ``None`` when nothing of it is on the page or a size is unusable."""
    (ow, oh), (iw, ih) = ocr_size, image_size
    if min(ow, oh, iw, ih) <= 0:
        return None
    x0, y0, x1, y1 = box
    sx, sy = iw / ow, ih / oh
    left = max(0, int((x0 - margin) * sx))
    top = max(0, int((y0 - margin) * sy))
    right = min(iw, round((x1 + margin) * sx))
    bottom = min(ih, round((y1 + margin) * sy))
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def crop_jpeg(jpeg: bytes, box: Box, ocr_size: tuple[int, int]) -> bytes | None:
    """The part of the page image ``jpeg`` under ``box`` (OCR pixels) as a JPEG; ``None`` when it is off the page."""
    with Image.open(io.BytesIO(jpeg)) as image:
        region = crop_region(box, ocr_size, image.size)
        if region is None:
            return None
        part = image.crop(region)
        part.load()
    if max(part.size) > MAX_CROP_SIDE:
        part.thumbnail((MAX_CROP_SIDE, MAX_CROP_SIDE))
    out = io.BytesIO()
    part.convert("RGB" if part.mode not in ("L", "RGB") else part.mode).save(out, "JPEG", quality=85)
    return out.getvalue()
