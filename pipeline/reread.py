"""A second look at the lines the page pass was unsure of.

Tesseract's page pass (``--psm 3``) sometimes reads a clean line badly because its layout analysis merged it
with a neighbour of another size (the number ``Số 1134-BC/VPTU`` beside the taller italic date) or cut a
word's diacritics off (``ĐÁẢNG``). Cut out alone and read as one line (``--psm 7``), such lines usually read
right. This module picks the doubtful lines and merges the second reading back; the caller runs the engine.

Only lines with a word below ``DOUBT_CONFIDENCE`` and enough letters or digits to be text (not a seal's rim,
a signature or a rule) are re-read, at most ``MAX_LINES`` per page. A second reading replaces a word only
where it is more confident; a reading that splits the line into a different number of words replaces the
line only when its mean confidence is clearly higher.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pipeline.reading_order import line_pieces
from schemas.ocr import OcrPage, OcrWord

Box = tuple[int, int, int, int]

DOUBT_CONFIDENCE = 0.5  # a line with a word read below this is re-read
MIN_TEXT_CHARS = 3  # ... when it has at least this many letters and digits
TEXT_SHARE = 0.6  # ... making up at least this share of its visible characters
MAX_LINES = 12  # per page, the least confident first
PAD_FACTOR = 0.35  # white margin around the cut-out line, in line heights
MIN_PAD = 8  # pixels
WHOLE_LINE_MARGIN = 0.15  # mean-confidence gain needed to replace a line whose words split differently


@dataclass(frozen=True)
class DoubtfulLine:
    """Words of one line the page pass was unsure of, and the box to cut out (page pixels, padded)."""

    words: tuple[OcrWord, ...]
    box: Box


def _text_like(words: tuple[OcrWord, ...]) -> bool:
    text = "".join(w.text for w in words)
    useful = sum(ch.isalnum() for ch in text)
    return useful >= MIN_TEXT_CHARS and useful >= TEXT_SHARE * len(text)


def _padded(words: tuple[OcrWord, ...], width: int, height: int) -> Box:
    x0 = min(w.box[0] for w in words)
    y0 = min(w.box[1] for w in words)
    x1 = max(w.box[2] for w in words)
    y1 = max(w.box[3] for w in words)
    pad = max(MIN_PAD, round(PAD_FACTOR * (y1 - y0)))
    return (max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad))


def doubtful_lines(page: OcrPage) -> list[DoubtfulLine]:
    """The lines worth a second reading, least confident first (at most ``MAX_LINES``)."""
    if not page.words or page.width <= 0 or page.height <= 0:
        return []
    candidates = [
        words for words in line_pieces(page)
        if min(w.confidence for w in words) < DOUBT_CONFIDENCE and _text_like(words)
    ]
    candidates.sort(key=lambda words: min(w.confidence for w in words))
    return [DoubtfulLine(words, _padded(words, page.width, page.height)) for words in candidates[:MAX_LINES]]


def _placed(word: OcrWord, box: Box, like: OcrWord) -> OcrWord:
    """A re-read word moved from crop to page pixels, in the line and block of the word it stands for."""
    x, y = box[0], box[1]
    b = word.box
    return OcrWord(text=word.text, box=(b[0] + x, b[1] + y, b[2] + x, b[3] + y), confidence=word.confidence,
                   line=like.line, block=like.block)


def _better(old: tuple[OcrWord, ...], new: list[OcrWord], box: Box) -> list[OcrWord] | None:
    """The line's words after the second reading, or ``None`` when the first reading stays."""
    if not new:
        return None
    if len(new) == len(old):
        merged = [_placed(n, box, o) if n.confidence > o.confidence else o for o, n in zip(old, new, strict=True)]
        return merged if any(m is not o for m, o in zip(merged, old, strict=True)) else None
    gain = statistics.fmean(w.confidence for w in new) - statistics.fmean(w.confidence for w in old)
    return [_placed(n, box, old[0]) for n in new] if gain >= WHOLE_LINE_MARGIN else None


def merge_rereads(page: OcrPage, lines: list[DoubtfulLine], rereads: list[list[OcrWord]]) -> tuple[OcrPage, int]:
    """``page`` with the better readings of ``lines`` put in (``rereads[i]`` in ``lines[i]``'s crop pixels).

    Returns the page (text unchanged: the caller rebuilds it in reading order) and how many lines changed.
    """
    replacement: dict[int, list[OcrWord]] = {}
    dropped: set[int] = set()
    for line, new in zip(lines, rereads, strict=True):
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
