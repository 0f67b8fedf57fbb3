"""Text lines of an OCR page with their column (left / right / centre) for metadata extraction.

With word boxes, tesseract's lines are split where a wide horizontal gap separates the two columns of the
header and footer, and each piece is placed by its x-position. Without boxes (plain text), merged lines are split
on textual cues instead: the national header, the place-and-date, ``Nơi nhận:`` and a trailing upper-case
signature line.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from schemas.ocr import OcrPage, OcrWord
from schemas.text import clean_ocr_text, fold

Box = tuple[int, int, int, int]

_BULLETS = ("-", "\u2013", "+")
_GAP_FACTOR = 1.2  # a gap wider than this many word heights separates two columns
_NATIONAL_RE = re.compile(
    r"d\w{0,2}ng\s*c\w{0,2}ng\s*s\w{0,2}n\s*vi\w{0,2}t\s*nam"
    r"|c\w{0,2}ng\s*h\w{0,2}a\s*x\w\s*h\w{0,2}i\s*ch\w\s*ngh\w{0,2}a\s*vi\w{0,2}t\s*nam"
    r"|d\w{0,2}c\s*l\w{0,2}p\W{0,4}t\w\s*d\w\W{0,4}h\w{0,2}nh\s*ph\w{0,2}c"
)
_DATE_WORD_RE = re.compile(r"ngay\s*\S{1,3}\s*thang")
_RECIPIENTS_RE = re.compile(r"n\w{0,2}i\s*nh\w{0,2}n\s*:?")


class Column(Enum):
    """Where a line sits across the page."""

    LEFT = "left"
    RIGHT = "right"
    CENTER = "center"  # crosses the middle of the page (titles, body text)
    UNKNOWN = "unknown"  # no boxes and no textual hint


@dataclass(frozen=True)
class Token:
    """One word: text, box (None without geometry) and confidence."""

    text: str
    box: Box | None
    conf: float


@dataclass(frozen=True)
class Line:
    """A line (or one column's part of a line) of one page."""

    tokens: tuple[Token, ...]
    page: int
    order: int
    column: Column
    gap_before: bool = False  # a blank line / new block precedes it (plain text only)

    @cached_property
    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)

    @cached_property
    def folded(self) -> str:
        return fold(self.text)

    @cached_property
    def box(self) -> Box | None:
        boxes = [t.box for t in self.tokens if t.box is not None]
        if not boxes:
            return None
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

    @cached_property
    def conf(self) -> float:
        return sum(t.conf for t in self.tokens) / len(self.tokens) if self.tokens else 0.0

    @cached_property
    def height(self) -> float:
        """Median height of the line's words (0 without boxes)."""
        return _median_height(self.tokens)

    @property
    def yc(self) -> float:
        b = self.box
        return (b[1] + b[3]) / 2 if b else float(self.order)

    @property
    def xc(self) -> float:
        b = self.box
        return (b[0] + b[2]) / 2 if b else 0.0


@dataclass(frozen=True)
class PageLines:
    """All lines of a page, in engine reading order."""

    number: int
    width: int
    height: int
    lines: tuple[Line, ...]
    has_boxes: bool

    @cached_property
    def line_height(self) -> float:
        """Typical word height on the page (pixels), or 1.0 without boxes."""
        heights = [ln.height for ln in self.lines if ln.height > 0 and len(ln.text) > 3]
        return statistics.median(heights) if heights else 1.0

    def by_y(self, lines: list[Line] | tuple[Line, ...] | None = None) -> list[Line]:
        """Lines sorted top to bottom (engine order without boxes)."""
        return sorted(self.lines if lines is None else lines, key=lambda ln: (ln.yc, ln.order))


def _median_height(tokens: tuple[Token, ...] | list[Token]) -> float:
    hs = [t.box[3] - t.box[1] for t in tokens if t.box is not None and len(t.text) > 1]
    if not hs:
        hs = [t.box[3] - t.box[1] for t in tokens if t.box is not None]
    return float(statistics.median(hs)) if hs else 0.0


def upper_ratio(text: str) -> float:
    """Share of upper-case letters among the letters of ``text`` (0 when it has none)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(ch.isupper() for ch in letters) / len(letters) if letters else 0.0


# ------------------------------------------------------------------ splitting


def _split_at_gaps(tokens: list[Token], width: int) -> list[list[Token]]:
    """Split x-sorted tokens where the horizontal gap is much wider than a word space."""
    h = _median_height(tokens) or 1.0
    limit = max(_GAP_FACTOR * h, 0.02 * width)
    parts: list[list[Token]] = [[tokens[0]]]
    for prev, tok in itertools.pairwise(tokens):
        assert prev.box is not None and tok.box is not None
        if tok.box[0] - prev.box[2] > limit:
            parts.append([tok])
        else:
            parts[-1].append(tok)
    return parts


def _token_offsets(tokens: list[Token]) -> list[int]:
    """Start offset of each token in ``" ".join(tokens)``."""
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t.text) + 1
    return offsets


def _token_at(tokens: list[Token], char_pos: int) -> int:
    """Index of the token containing (or starting after) character offset ``char_pos``."""
    for i, off in enumerate(_token_offsets(tokens)):
        if off + len(tokens[i].text) > char_pos:
            return i
    return len(tokens)


def _cut(tokens: list[Token], idx: int, left: Column, right: Column) -> list[tuple[list[Token], Column]]:
    if 0 < idx < len(tokens):
        return [(tokens[:idx], left), (tokens[idx:], right)]
    return [(tokens, right if idx == 0 else left)]


def _split_national(tokens: list[Token]) -> list[tuple[list[Token], Column]] | None:
    text = " ".join(t.text for t in tokens)
    m = _NATIONAL_RE.search(fold(text))
    if not m:
        return None
    is_motto = m.group(0).startswith("doc")
    if not is_motto and upper_ratio(text[m.start() : m.end()]) < 0.5:
        return None
    start = _token_at(tokens, m.start())
    end = _token_at(tokens, m.end() - 1) + 1
    pieces = _cut(tokens[:end], start, Column.LEFT, Column.RIGHT)
    if end < len(tokens):
        pieces.append((tokens[end:], Column.UNKNOWN))
    return pieces


def _split_date(tokens: list[Token]) -> list[tuple[list[Token], Column]] | None:
    """``Số 15-NQ/TU Đà Nẵng, ngày ...`` → number part | place-and-date part (the comma is required)."""
    text = " ".join(t.text for t in tokens)
    m = _DATE_WORD_RE.search(fold(text))
    if not m:
        return None
    day_idx = _token_at(tokens, m.start())
    if day_idx == 0 or not tokens[day_idx - 1].text.endswith(","):
        return None
    start = day_idx
    while start > 0 and _is_place_token(tokens[start - 1].text) and day_idx - start < 6:
        start -= 1
    if start == 0:
        return None
    return _cut(tokens, start, Column.LEFT, Column.RIGHT)


def _is_place_token(text: str) -> bool:
    core = text.strip(",.;:-\u2013")
    return bool(core) and core[0].isupper() and not any(ch.isdigit() or ch == "/" for ch in core)


def _split_recipients_head(tokens: list[Token]) -> list[tuple[list[Token], Column]] | None:
    """``Nơi nhận: K/T BÍ THƯ`` → ``Nơi nhận:`` | signature part."""
    text = " ".join(t.text for t in tokens)
    m = _RECIPIENTS_RE.match(fold(text))
    if not m or not text.startswith("N"):
        return None
    idx = _token_at(tokens, m.end() - 1) + 1
    rest = tokens[idx:]
    if not rest or rest[0].text.startswith(_BULLETS):
        return None
    return _cut(tokens, idx, Column.LEFT, Column.RIGHT)


def _split_trailing_caps(tokens: list[Token]) -> list[tuple[list[Token], Column]] | None:
    """``- Kho lưu trữ, PHÓ BÍ THƯ`` → recipient | upper-case signature part."""
    if not tokens or not tokens[0].text.startswith(_BULLETS):
        return None
    for i in range(1, len(tokens) - 1):
        if tokens[i].text.endswith((",", ";", ".")):
            rest = " ".join(t.text for t in tokens[i + 1 :])
            if _looks_like_signature_line(rest):
                return _cut(tokens, i + 1, Column.LEFT, Column.RIGHT)
    return None


def _looks_like_signature_line(text: str) -> bool:
    """An upper-case title such as ``PHÓ BÍ THƯ`` (not ``VT, NC.`` in ``Lưu: VT, NC.``)."""
    return (
        len(text.split()) >= 2
        and sum(ch.isalpha() for ch in text) >= 5
        and upper_ratio(text) > 0.8
        and not any(ch in text for ch in ",;")
    )


_SPLITTERS: tuple[Callable[[list[Token]], list[tuple[list[Token], Column]] | None], ...] = (
    _split_national,
    _split_date,
    _split_recipients_head,
    _split_trailing_caps,
)


def split_text(tokens: list[Token], hint: Column = Column.UNKNOWN) -> list[tuple[list[Token], Column]]:
    """Split a merged two-column line on textual cues; each piece gets a column hint."""
    for splitter in _SPLITTERS:
        pieces = splitter(tokens)
        if pieces and len(pieces) > 1:
            out: list[tuple[list[Token], Column]] = []
            for part, col in pieces:
                sub = split_text(part, col)
                out.extend(sub if len(sub) > 1 else [(part, col)])
            return out
    return [(tokens, hint)]


# ------------------------------------------------------------------ building


def _column_of(tokens: list[Token], width: int) -> Column:
    boxes = [t.box for t in tokens if t.box is not None]
    if not boxes or width <= 0:
        return Column.UNKNOWN
    x0, x1 = min(b[0] for b in boxes), max(b[2] for b in boxes)
    mid, slack = width / 2, 0.02 * width
    if x1 <= mid + slack:
        return Column.LEFT
    if x0 >= mid - slack:
        return Column.RIGHT
    return Column.CENTER


def _word_groups(words: list[OcrWord]) -> list[list[OcrWord]]:
    groups: dict[tuple[int, int], list[OcrWord]] = {}
    for w in words:
        groups.setdefault((w.block, w.line), []).append(w)
    return list(groups.values())


def _lines_from_words(page: OcrPage) -> list[Line]:
    lines: list[Line] = []
    for group in _word_groups(page.words):
        tokens = sorted(
            (Token(clean_ocr_text(w.text), w.box, w.confidence) for w in group if w.text.strip()),
            key=lambda t: t.box[0] if t.box else 0,
        )
        if not tokens:
            continue
        pieces = [piece for part in _split_at_gaps(tokens, page.width) for piece, _hint in split_text(part)]
        for piece, col in _merge_same_column(pieces, page.width):
            lines.append(Line(tuple(piece), page.number, len(lines), col))
    return lines


def _merge_same_column(pieces: list[list[Token]], width: int) -> list[tuple[list[Token], Column]]:
    """Re-join neighbouring pieces of one line that fall in the same side column (a wide word gap)."""
    out: list[tuple[list[Token], Column]] = []
    for piece in pieces:
        col = _column_of(piece, width)
        if out and col == out[-1][1] and col in (Column.LEFT, Column.RIGHT):
            out[-1] = (out[-1][0] + piece, col)
        else:
            out.append((piece, col))
    return out


def _lines_from_text(page: OcrPage) -> list[Line]:
    lines: list[Line] = []
    gap = False
    for raw in clean_ocr_text(page.text).splitlines():
        words = raw.split()
        if not words:
            gap = True
            continue
        tokens = [Token(w, None, page.confidence) for w in words]
        for piece, hint in split_text(tokens):
            lines.append(Line(tuple(piece), page.number, len(lines), hint, gap_before=gap))
            gap = False
    return lines


def page_lines(page: OcrPage) -> PageLines:
    """Lines of ``page``: from word boxes when present, else from the page text."""
    has_boxes = any(w.box != (0, 0, 0, 0) for w in page.words)
    lines = _lines_from_words(page) if has_boxes else _lines_from_text(page)
    return PageLines(page.number, page.width, page.height, tuple(lines), has_boxes)
