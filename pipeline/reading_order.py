"""Rebuild a page's text in logical reading order from its word boxes.

Tesseract reads a Party document's two-column header (issuing body | national header, number | place and date)
and its two-column footer (``Nơi nhận`` | signature block) row by row, merging both columns onto one line. This
stage splits such lines at wide horizontal gaps (the rule of ``pipeline.metadata.layout``: a gap wider than
1.2 word heights, or 2 % of the page width) and reorders the pieces from geometry alone:

* a *separator* is a piece that crosses the middle of the text area by a clear margin and is centred near it
  (titles, body lines, ``Kính gửi``); side columns never are, even a long line centred on the right column;
* the pieces above the first separator form the header band, those below the last one the footer band;
  in each band that has pieces on both sides, the left column is read top to bottom, then the right column;
* everything between the first and last separator keeps the engine's reading order, lines whole.

Words and their boxes are not changed; only the text is rebuilt. Pages without word boxes keep their text.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.ocr import OcrPage, OcrWord

Box = tuple[int, int, int, int]

GAP_FACTOR = 1.2  # same rule as pipeline.metadata.layout: a gap wider than 1.2 word heights splits columns
GAP_MIN_WIDTH = 0.02  # ... and wider than this share of the page width
SPACE_FACTOR = 4.0  # ... or wider than 4 median word spaces of its line...
SPACE_MIN_HEIGHT = 0.8  # ... and 0.8 word heights...
MIN_SPACES = 4  # ... on a line with this many word spaces
HEADER_END_GAP = 2.0  # word heights below the right header column where the header band ends on the left
SEPARATOR_MARGIN = 0.05  # a separator reaches this share of the text width past the middle on both sides
SEPARATOR_CENTRE = 0.15  # ... and its centre lies within this share of the text width from the middle
EXTENT_QUANTILE = 0.1  # text area: 10th percentile of piece left edges to 90th percentile of right edges


@dataclass(frozen=True)
class _Piece:
    """Words of one engine line that sit together (no column gap between them), x-sorted."""

    words: tuple[OcrWord, ...]
    line: int  # index of the engine line (reading order of the engine)
    block: int

    @property
    def box(self) -> Box:
        bs = [w.box for w in self.words]
        return (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))

    @property
    def xc(self) -> float:
        b = self.box
        return (b[0] + b[2]) / 2

    @property
    def yc(self) -> float:
        b = self.box
        return (b[1] + b[3]) / 2

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def _engine_lines(words: Iterable[OcrWord]) -> list[list[OcrWord]]:
    """Words grouped by (block, line), in the engine's order."""
    groups: dict[tuple[int, int], list[OcrWord]] = {}
    for w in words:
        groups.setdefault((w.block, w.line), []).append(w)
    return list(groups.values())


def _word_height(words: list[OcrWord]) -> float:
    hs = [w.box[3] - w.box[1] for w in words if len(w.text) > 1] or [w.box[3] - w.box[1] for w in words]
    return float(statistics.median(hs)) if hs else 1.0


_DASHES = {"-", "–", "—"}


def _has_text(word: OcrWord) -> bool:
    return any(ch.isalnum() for ch in word.text)


def split_at_gaps(words: list[OcrWord], page_width: int) -> list[list[OcrWord]]:
    """Split one line's words (sorted by x) where the horizontal gap is much wider than a word space.

    On a line of ``MIN_SPACES`` word spaces or more, a gap wider than ``SPACE_FACTOR`` times the median space (and
    ``SPACE_MIN_HEIGHT`` word heights) splits too: the columns of a small page (80-150 dpi, upscaled) stand closer
    than 1.2 word heights. Gaps are measured between words holding letters or digits: a speck read as punctuation
    (``_``, ``.``) in the gap between two columns does not bridge it; it joins the side it is nearer to. A dash
    between words (``Tự do - Hạnh phúc``) counts as a word."""
    if not words:
        return []
    height = _word_height(words)
    limit = max(GAP_FACTOR * height, GAP_MIN_WIDTH * page_width)
    spaces = [b.box[0] - a.box[2] for a, b in itertools.pairwise([w for w in words if _has_text(w)])]
    if len(spaces) >= MIN_SPACES:  # a low-resolution page's columns stand closer than 1.2 word heights
        limit = min(limit, max(SPACE_FACTOR * statistics.median(spaces), SPACE_MIN_HEIGHT * height))
    parts: list[list[OcrWord]] = [[words[0]]]
    right = words[0].box[2]
    pending: list[OcrWord] = []
    for word in words[1:]:
        if not _has_text(word):
            pending.append(word)
            continue
        dashes = sum(w.box[2] - w.box[0] for w in pending if w.text in _DASHES)  # "Tự do - Hạnh phúc"
        if word.box[0] - right - dashes > limit:
            near = [w for w in pending if w.box[0] - right <= word.box[0] - w.box[2]]
            parts[-1].extend(near)
            parts.append([w for w in pending if w not in near] + [word])
        else:
            parts[-1].extend([*pending, word])
        pending = []
        right = word.box[2]
    for word in pending:  # marks after the last word: split as words are
        dashes = sum(w.box[2] - w.box[0] for w in pending if w.text in _DASHES)  # "Tự do - Hạnh phúc"
        if word.box[0] - right - dashes > limit:
            parts.append([])
        parts[-1].append(word)
        right = word.box[2]
    return parts


def line_pieces(page: OcrPage) -> list[tuple[OcrWord, ...]]:
    """Each engine line split at column gaps: the words that sit together, x-sorted."""
    return [piece.words for piece in _pieces(page)]


def _pieces(page: OcrPage) -> list[_Piece]:
    pieces: list[_Piece] = []
    for index, line in enumerate(_engine_lines(page.words)):
        ordered = sorted(line, key=lambda w: w.box[0])
        for part in split_at_gaps(ordered, page.width):
            pieces.append(_Piece(tuple(part), index, part[0].block))
    return pieces


def _quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))])


def _text_middle(pieces: list[_Piece]) -> tuple[float, float]:
    """Middle x of the text area and its width (pixels)."""
    left = _quantile([p.box[0] for p in pieces], EXTENT_QUANTILE)
    right = _quantile([p.box[2] for p in pieces], 1 - EXTENT_QUANTILE)
    if right <= left:
        left, right = min(p.box[0] for p in pieces), max(p.box[2] for p in pieces)
    return (left + right) / 2, right - left


def _is_separator(piece: _Piece, middle: float, text_width: float) -> bool:
    """A piece across the middle of the text area, centred on it (a title, a body line), not a side column's."""
    margin = SEPARATOR_MARGIN * text_width
    crosses = piece.box[0] < middle - margin and piece.box[2] > middle + margin
    return crosses and abs(piece.xc - middle) <= SEPARATOR_CENTRE * text_width


def _rows(pieces: list[_Piece], word_height: float) -> list[list[_Piece]]:
    """Pieces grouped into rows (centres within half a word height), top to bottom, each row left to right."""
    rows: list[list[_Piece]] = []
    for piece in sorted(pieces, key=lambda p: (p.yc, p.box[0])):
        if rows and abs(piece.yc - rows[-1][0].yc) <= word_height / 2:
            rows[-1].append(piece)
        else:
            rows.append([piece])
    return [sorted(row, key=lambda p: p.box[0]) for row in rows]


def _column_text(pieces: list[_Piece], word_height: float) -> str:
    return "\n".join(" ".join(p.text for p in row) for row in _rows(pieces, word_height))


def _band_blocks(pieces: list[_Piece], middle: float, word_height: float) -> list[str]:
    """A side-by-side band: the left column, then the right one (one block when only one side has text)."""
    if not pieces:
        return []
    left = [p for p in pieces if p.xc < middle]
    right = [p for p in pieces if p.xc >= middle]
    if left and right:
        return [_column_text(left, word_height), _column_text(right, word_height)]
    return [_column_text(pieces, word_height)]


def _engine_blocks(pieces: list[_Piece]) -> list[str]:
    """Pieces joined back into their engine lines, lines into engine blocks, in engine order."""
    lines: dict[int, list[_Piece]] = {}
    for piece in pieces:
        lines.setdefault(piece.line, []).append(piece)
    blocks: list[list[str]] = []
    prev_block: int | None = None
    for index in sorted(lines):
        parts = lines[index]
        text = " ".join(p.text for p in parts)
        if prev_block is None or parts[0].block != prev_block:
            blocks.append([text])
        else:
            blocks[-1].append(text)
        prev_block = parts[0].block
    return ["\n".join(b) for b in blocks]


def _header_columns(header: list[_Piece], middle: float, word_height: float) -> list[_Piece]:
    """The header band without the labels (pieces ending with ``:``) on the left standing well below the end of its
    right column (a short ``Kính gửi:`` above a list of recipients): those are read with the body, after both
    columns. Other pieces there (a ``MẬT`` stamp under the number) stay in the left column."""
    right = [p.box[3] for p in header if p.xc >= middle]
    if not right or not any(p.xc < middle for p in header):
        return header
    end = max(right) + HEADER_END_GAP * word_height
    return [p for p in header if p.xc >= middle or p.box[1] <= end or not p.text.endswith(":")]


def order_page_text(page: OcrPage) -> str:
    """The page text in logical reading order (header columns left then right, body, footer columns)."""
    if not page.words or all(w.box == (0, 0, 0, 0) for w in page.words):
        return page.text
    pieces = _pieces(page)
    middle, text_width = _text_middle(pieces)
    height = _word_height(list(page.words))
    separators = [p for p in pieces if _is_separator(p, middle, text_width)]
    if not separators:
        return "\n\n".join(_band_blocks(pieces, middle, height))
    first = min(p.yc for p in separators)
    last = max(p.yc for p in separators)
    sep_ids = {id(p) for p in separators}
    header = _header_columns([p for p in pieces if id(p) not in sep_ids and p.yc < first], middle, height)
    footer = [p for p in pieces if id(p) not in sep_ids and p.yc > last]
    band_ids = {id(p) for p in header + footer}
    body = [p for p in pieces if id(p) not in band_ids]
    blocks = _band_blocks(header, middle, height) + _engine_blocks(body) + _band_blocks(footer, middle, height)
    return "\n\n".join(b for b in blocks if b)
