"""A second look at the lines the page pass was unsure of.

Tesseract's page pass (``--psm 3``) sometimes reads a clean line badly because its layout analysis merged it
with a neighbour of another size (the number ``Số 1134-BC/VPTU`` beside the taller italic date) or cut a
word's diacritics off (``ĐÁẢNG``). Cut out alone and read as one line (``--psm 7``), such lines usually read
right. This module picks the doubtful lines and merges the second reading back; the caller runs the engine.

Only lines with a word below ``DOUBT_CONFIDENCE`` and enough letters or digits to be text (not a seal's rim,
a signature or a rule) are re-read, at most ``MAX_LINES`` per page. A second reading replaces a word only
where it is more confident; a reading that splits the line into a different number of words replaces the
line only when its mean confidence is clearly higher.

A doubtful piece ``TALL_LINE`` times taller than the page's words is several printed lines the page pass fused
(a column of small italic recipients beside the larger signature titles, on another line pitch): its cut-out
is split into text rows at the blank bands of its ink profile (``text_rows``), each row is read alone, and the
rows replace the piece as lines of their own when their mean confidence is clearly higher.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import numpy as np

from pipeline.junk_lines import alnum_count, is_mark_like
from pipeline.reading_order import line_pieces
from schemas.ocr import OcrPage, OcrWord

Box = tuple[int, int, int, int]

DOUBT_CONFIDENCE = 0.5  # a line with a word read below this is re-read
MIN_TEXT_CHARS = 3  # ... when it has at least this many letters and digits
TEXT_SHARE = 0.6  # ... making up at least this share of its visible characters
UNDER_READ_WIDTH = 3.0  # ... or a lone word whose box is this many heights wide per two characters read
MAX_LINES = 12  # per page, the least confident first
PAD_FACTOR = 0.35  # white margin around the cut-out line, in line heights
MIN_PAD = 8  # pixels
WHOLE_LINE_MARGIN = 0.15  # mean-confidence gain needed to replace a line whose words split differently
MAX_LOST = 0.3  # ...and it may not have lost more than this share of the line's letters and digits
TALL_LINE = 1.6  # a doubtful piece this many median word heights tall is several lines fused
ROW_GAP = 0.12  # a blank band at least this many word heights high separates two rows...
ROW_MIN = 0.4  # ...and a row lower than this many word heights (diacritics) joins the row below it
INK_LEVEL = 128  # grey level below which a pixel is ink


@dataclass(frozen=True)
class DoubtfulLine:
    """Words of one line the page pass was unsure of, and the box to cut out (page pixels, padded)."""

    words: tuple[OcrWord, ...]
    box: Box
    tall: bool = False  # several printed lines fused: read as text rows (``text_rows``)


def _text_like(words: tuple[OcrWord, ...]) -> bool:
    text = "".join(w.text for w in words)
    useful = sum(ch.isalnum() for ch in text)
    if useful and len(words) == 1 and _under_read(words[0]):
        return True
    return useful >= MIN_TEXT_CHARS and useful >= TEXT_SHARE * len(text)


def _under_read(word: OcrWord) -> bool:
    """A word read unsurely with far fewer characters than its box is wide (``An`` for ``Nơi nhận:``)."""
    width, height = word.box[2] - word.box[0], word.box[3] - word.box[1]
    return word.confidence < DOUBT_CONFIDENCE and width >= UNDER_READ_WIDTH * height * max(1, len(word.text)) / 2


def _padded(words: tuple[OcrWord, ...], width: int, height: int) -> Box:
    x0 = min(w.box[0] for w in words)
    y0 = min(w.box[1] for w in words)
    x1 = max(w.box[2] for w in words)
    y1 = max(w.box[3] for w in words)
    pad = max(MIN_PAD, round(PAD_FACTOR * (y1 - y0)))
    return (max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad))


def _height(words: tuple[OcrWord, ...]) -> int:
    return max(w.box[3] for w in words) - min(w.box[1] for w in words)


def word_height(page: OcrPage) -> float:
    """Median height of the page's words of two or more characters."""
    heights = [w.box[3] - w.box[1] for w in page.words if len(w.text) > 1] or [w.box[3] - w.box[1] for w in page.words]
    return float(statistics.median(heights)) if heights else 1.0


def doubtful_lines(page: OcrPage) -> list[DoubtfulLine]:
    """The lines worth a second reading, least confident first (at most ``MAX_LINES``)."""
    if not page.words or page.width <= 0 or page.height <= 0:
        return []
    tall = TALL_LINE * word_height(page)
    candidates = [
        words for words in line_pieces(page)
        if min(w.confidence for w in words) < DOUBT_CONFIDENCE and _text_like(words)
    ]
    candidates.sort(key=lambda words: min(w.confidence for w in words))
    return [DoubtfulLine(words, _padded(words, page.width, page.height), tall=_height(words) > tall)
            for words in candidates[:MAX_LINES]]


def _runs(flags: np.ndarray) -> list[list[int]]:
    """[start, end) runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return [[int(a), int(b)] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def text_rows(crop: np.ndarray, height: float) -> list[tuple[int, int]]:
    """The text rows (y0, y1) of a grey cut-out of several fused lines, split at the blank bands of its ink.

    Bands lower than ``ROW_GAP`` word heights do not split (they separate diacritics from their letters); rows
    lower than ``ROW_MIN`` word heights join the row below (or above, for the last). Each row is padded by half
    the blank band around it. One row, ``[(0, h)]``, when no split is found."""
    if crop.ndim == 3:  # a colour cut-out: its darkest channel
        crop = crop.min(axis=2)
    h = crop.shape[0]
    ink = (crop < INK_LEVEL).sum(axis=1) > max(1, crop.shape[1] // 200)
    runs = _runs(ink)
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < ROW_GAP * height:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    rows: list[list[int]] = []
    carry: int | None = None
    for run in merged:
        start = run[0] if carry is None else carry
        if run[1] - run[0] < ROW_MIN * height:
            carry = start
            continue
        rows.append([start, run[1]])
        carry = None
    if carry is not None and rows:
        rows[-1][1] = merged[-1][1]
    if len(rows) < 2:
        return [(0, h)]
    cuts = [0] + [(a[1] + b[0]) // 2 for a, b in itertools.pairwise(rows)] + [h]
    return [(cuts[i], cuts[i + 1]) for i in range(len(rows))]


def _placed(word: OcrWord, box: Box, like: OcrWord) -> OcrWord:
    """A re-read word moved from crop to page pixels, in the line and block of the word it stands for."""
    x, y = box[0], box[1]
    b = word.box
    return OcrWord(text=word.text, box=(b[0] + x, b[1] + y, b[2] + x, b[3] + y), confidence=word.confidence,
                   line=like.line, block=like.block)


def _keeps(old: tuple[OcrWord, ...], new: list[OcrWord]) -> bool:
    """A second reading may replace the first only when it keeps a secrecy or urgency mark the first one read
    (``pipeline.junk_lines.is_mark_like``) and does not lose more than ``MAX_LOST`` of its letters and digits."""
    if is_mark_like(old) and not is_mark_like(new):
        return False
    return sum(alnum_count(w.text) for w in new) >= (1 - MAX_LOST) * sum(alnum_count(w.text) for w in old)


def _better(old: tuple[OcrWord, ...], new: list[OcrWord], box: Box) -> list[OcrWord] | None:
    """The line's words after the second reading, or ``None`` when the first reading stays."""
    if not new:
        return None
    if len(new) == len(old):
        merged = [_placed(n, box, o) if n.confidence > o.confidence else o for o, n in zip(old, new, strict=True)]
        changed = any(m is not o for m, o in zip(merged, old, strict=True))
        return merged if changed and not (is_mark_like(old) and not is_mark_like(merged)) else None
    gain = statistics.fmean(w.confidence for w in new) - statistics.fmean(w.confidence for w in old)
    return [_placed(n, box, old[0]) for n in new] if gain >= WHOLE_LINE_MARGIN and _keeps(old, new) else None


def _better_rows(old: tuple[OcrWord, ...], new: list[OcrWord], box: Box, first_line: int) -> list[OcrWord] | None:
    """A fused piece read again row by row (``new``: the rows' words, each row's ``line`` its index): the rows as
    lines of their own (numbered from ``first_line``), or ``None`` when the first reading stays."""
    if not new:
        return None
    gain = statistics.fmean(w.confidence for w in new) - statistics.fmean(w.confidence for w in old)
    if gain < WHOLE_LINE_MARGIN or not _keeps(old, new):
        return None
    return [_placed(n, box, old[0]).model_copy(update={"line": first_line + n.line}) for n in new]


def merge_rereads(page: OcrPage, lines: list[DoubtfulLine], rereads: list[list[OcrWord]]) -> tuple[OcrPage, int]:
    """``page`` with the better readings of ``lines`` put in (``rereads[i]`` in ``lines[i]``'s crop pixels; for a
    tall line, the words of all its rows, each word's ``line`` the index of its row).

    Returns the page (text unchanged: the caller rebuilds it in reading order) and how many lines changed.
    """
    replacement: dict[int, list[OcrWord]] = {}
    dropped: set[int] = set()
    next_line = max((w.line for w in page.words), default=0) + 1
    for line, new in zip(lines, rereads, strict=True):
        if line.tall:
            better = _better_rows(line.words, new, line.box, next_line)
            next_line += len({w.line for w in new})
        else:
            better = _better(line.words, new, line.box)
        if better is None:
            continue
        replacement[id(line.words[0])] = better
        dropped.update(id(w) for w in line.words)
    if not replacement:
        return page, 0
    words: list[OcrWord] = []
    for word in page.words:
        if id(word) in replacement:
            words.extend(replacement[id(word)])
        elif id(word) not in dropped:
            words.append(word)
    confidence = statistics.fmean(w.confidence for w in words) if words else 0.0
    return page.model_copy(update={"words": words, "confidence": confidence}), len(replacement)
