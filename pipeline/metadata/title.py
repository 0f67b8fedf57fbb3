"""Document type title (``NGHỊ QUYẾT``) and trích yếu: the lines under the title, or a công văn's ``V/v``."""

from __future__ import annotations

import re
from dataclasses import replace

from schemas.text import fold

from .found import Found
from .fuzzy import ratio
from .layout import Column, Line, PageLines, upper_ratio
from .repair import Lexicon
from .vocab import TITLE_KEYS

_NOISE_CONF = 0.5  # a line read below this mean confidence is ink other than print (stamp, handwriting)
_TITLE_ZONE_LINES = 14  # the title follows the header within this many lines
_TITLE_ZONE_SHARE = 0.6  # ... and lies in the top 60 % of page 1
_FUZZY_TITLE = 86.0
_FIRST_GAP = 3.2  # max distance title → first subject line, in word heights
_NEXT_GAP = 2.3  # max distance between two subject lines, in word heights
_VV_RE = re.compile(r"^\W{0,2}v\s*(?:[/\u2044\\|%]{1,3}\s*v?|v)(?=\s)")  # V/v and OCR variants (fraction slash, %)
_BODY_START_RE = re.compile(
    r"^\W{0,2}(?:(?:\d{1,2}|[ivxlc]{1,5}|[a-z])\s*[.)\-\u2013:]\s|[-\u2013+\u2022*]|can\s*cu\b|kinh\s*gui\b|dieu\s*\d|chuong\s"
    r"|phan\s+(?:\d|[ivx]+\b)|noi\s*nhan)"
)


def _squash(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalpha())


def match_type_title(text: str) -> tuple[str, float] | None:
    """(type name, certainty) if ``text`` is a type title line such as ``QUYẾT ĐỊNH`` or ``BAO CAO``."""
    if upper_ratio(text) < 0.6:
        return None
    key = _squash(text)
    if key in TITLE_KEYS:
        return TITLE_KEYS[key], 0.95
    words = text.split()
    for k in (1, 2, 3):  # junk from a stamp before the title: "B00 IÊi KẾT LUẬN"
        prefix, tail = words[:-k], _squash(" ".join(words[-k:]))
        if 0 < len(prefix) <= 2 and all(len(w) <= 4 for w in prefix) and tail in TITLE_KEYS:
            return TITLE_KEYS[tail], 0.75
    best = max(TITLE_KEYS, key=lambda k: ratio(key, k))
    if len(best) >= 6 and ratio(key, best) >= _FUZZY_TITLE:
        return TITLE_KEYS[best], 0.8
    return None


def _title_zone(page: PageLines, after: Line | None) -> list[Line]:
    if page.has_boxes:
        top = after.yc + 0.5 * page.line_height if after else 0.0
        lines = [ln for ln in page.lines if top < ln.yc < _TITLE_ZONE_SHARE * page.height]
        return page.by_y(lines)[:_TITLE_ZONE_LINES]
    start = after.order + 1 if after else 0
    return list(page.lines[start : start + _TITLE_ZONE_LINES])


def find_title(page: PageLines, after: Line | None) -> Found[str] | None:
    """The type title below the header (``after`` is the lowest header line found)."""
    for ln in _title_zone(page, after):
        hit = match_type_title(ln.text)
        if hit:
            return Found(hit[0], (ln,), hit[1])
    return None


def is_body_start(text: str) -> bool:
    """True if ``text`` opens the body (enumeration, ``Căn cứ``, ``Kính gửi``, bullet, upper-case heading)."""
    folded = fold(text).strip()
    if _BODY_START_RE.match(folded):
        return True
    words = [w for w in text.split() if any(ch.isalpha() for ch in w)]
    return len(words) >= 2 and upper_ratio(text) > 0.8


def _starts_lower(text: str) -> bool:
    first = next((ch for ch in text if ch.isalnum()), "")
    return first.islower() or first.isdigit()


def _follow(page: PageLines, start: Line, first_gap: float, same_column: bool) -> list[Line]:
    """Lines below ``start`` (box path) or after it (text path) that may continue a subject."""
    if page.has_boxes:
        below = [ln for ln in page.lines if ln.yc > start.yc + 0.3 * page.line_height]
        if same_column:
            below = [ln for ln in below if ln.column == start.column]
        out: list[Line] = []
        prev_y = start.yc
        for ln in page.by_y(below):
            gap = first_gap if not out else _NEXT_GAP
            if ln.yc - prev_y > gap * page.line_height:
                break
            out.append(ln)
            prev_y = ln.yc
        return out
    rest = [ln for ln in page.lines[start.order + 1 :] if ln.column != Column.RIGHT]
    return rest[:6]


def find_subject(page: PageLines, title: Line, lexicon: Lexicon) -> Found[str] | None:
    """The trích yếu under the type title: first line plus continuation lines."""
    taken: list[Line] = []
    for ln in _follow(page, title, _FIRST_GAP, same_column=False):
        if is_body_start(ln.text) or match_type_title(ln.text):
            break
        if taken and not _continues(page, taken[-1], ln):
            break
        if not taken and not page.has_boxes and not _starts_lower(ln.text) and not fold(ln.text).startswith("ve"):
            break
        taken.append(ln)
    if not taken:
        return None
    text = lexicon.fix(" ".join(ln.text for ln in taken))
    return Found(text, tuple(taken), 0.85)


def _continues(page: PageLines, prev: Line, ln: Line) -> bool:
    """May ``ln`` continue the subject line ``prev``?"""
    if not page.has_boxes:
        return not ln.gap_before and _starts_lower(ln.text)
    if _starts_lower(ln.text):
        return True
    return ln.yc - prev.yc <= 1.8 * page.line_height and abs(ln.xc - prev.xc) < 0.1 * page.width


_ENUM_RE = re.compile(r"^\(?\d{1,2}[.)]$")
_MIN_ALIGNED = 2  # enumeration marks starting at one x that make a second column


def _second_column_x(lines: list[Line], width: int) -> int | None:
    """Left edge of a numbered column printed beside the left column (a receiving office's routing note next to
    the trích yếu): mid-line enumeration marks ``1.``, ``2.`` starting at the same x on several lines."""
    xs = sorted(t.box[0] for ln in lines for t in ln.tokens[1:] if t.box and _ENUM_RE.match(t.text))
    for i in range(len(xs) - _MIN_ALIGNED + 1):
        if xs[i + _MIN_ALIGNED - 1] - xs[i] <= 0.01 * width:
            return xs[i]
    return None


def _cut_at(page: PageLines, x: int) -> PageLines:
    """``page`` with the words right of ``x`` dropped from the lines that cross it."""
    lines = []
    for ln in page.lines:
        keep = tuple(t for t in ln.tokens if t.box is None or t.box[0] < x - 2)
        if keep and len(keep) < len(ln.tokens):
            ln = replace(ln, tokens=keep, column=Column.LEFT)
        if keep:
            lines.append(ln)
    return replace(page, lines=tuple(lines))


def find_vv_subject(page: PageLines, code_line: Line, lexicon: Lexicon) -> Found[str] | None:
    """A công văn's subject under its number: ``V/v ...`` and its continuation lines."""
    if page.has_boxes:
        near = [ln for ln in page.lines if code_line.yc < ln.yc < code_line.yc + 8 * page.line_height]
        cut = _second_column_x(near, page.width)
        if cut is not None and cut > code_line.xc:
            page = _cut_at(page, cut)
        lines = [ln for ln in page.lines if ln.yc > code_line.yc and ln.xc < page.width / 2]
        candidates = page.by_y(lines)[:4]
    else:
        candidates = [ln for ln in page.lines[code_line.order + 1 : code_line.order + 6] if ln.column != Column.RIGHT]
    for ln in candidates:
        m = _VV_RE.match(fold(ln.text))
        if not m:
            continue
        taken = [ln]
        for nxt in _follow(page, ln, _NEXT_GAP, same_column=page.has_boxes):
            if nxt.conf < _NOISE_CONF or _is_overread(page, nxt):
                continue  # a stamp or handwriting between two lines of the subject
            body = is_body_start(nxt.text) and not _dash_continuation(page, taken[-1], nxt)
            if upper_ratio(nxt.text) > 0.6 or body or not _continues(page, taken[-1], nxt):
                break
            taken.append(nxt)
        rest = " ".join([ln.text[m.end() :].strip(), *(t.text for t in taken[1:])])
        return Found("V/v " + lexicon.fix(rest.strip()), tuple(taken), 0.85)
    return None


_DASHES = ("-", "\u2013", "\u2014")
_OVERLAP = 0.25  # share of a word's box covered by another line's word for the two to be the same ink


def _dash_continuation(page: PageLines, prev: Line, ln: Line) -> bool:
    """``- Hội thánh ...`` under ``V/v ... tà đạo``: a dash-led line inside the left header column, close under and
    centred with the line before, goes on with the trích yếu (the header column holds no bullet list; a body
    bullet line runs past the middle of the page)."""
    if not page.has_boxes or ln.box is None or not ln.text.startswith(_DASHES):
        return False
    rest = ln.text.lstrip("".join(_DASHES) + " ")
    if not rest or is_body_start(rest):
        return False
    return ln.box[2] < page.width / 2 and _continues(page, prev, ln)


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def _covered(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> bool:
    w = min(box[2], other[2]) - max(box[0], other[0])
    h = min(box[3], other[3]) - max(box[1], other[1])
    return w > 0 and h > 0 and w * h >= _OVERLAP * max(1, _area(box))


def _is_overread(page: PageLines, ln: Line) -> bool:
    """A line most of whose words lie on the words of a line read more surely: the same ink read a second time,
    or handwriting across print (``3i hề và`` over ``nghỉ hè và``), not a line of its own."""
    if not page.has_boxes:
        return False
    boxes = [t.box for o in page.lines if o is not ln and o.conf > ln.conf for t in o.tokens if t.box is not None]
    hits = sum(1 for t in ln.tokens if t.box is not None and any(_covered(t.box, b) for b in boxes))
    return 2 * hits > len(ln.tokens)
