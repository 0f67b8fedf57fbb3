"""Handwritten fill-ins of the number and the date: a fact read from the page, not a guess about the value.

State offices print the header from a template with dot leaders (``Số: ...... /TB-ĐHĐL``, ``ngày .... tháng ....
năm 2025``) and the văn thư writes the number and the day/month by hand when registering the document (Nghị định
30/2020/NĐ-CP, art. 15). The OCR reads such ink as wrong digits with fair confidence, so a value is kept only when
no sign of a fill-in is seen around it. The signs, all from the ``OcrPage`` words of the line:

* ``leaders``: dot-leader residue (``..``, ``…``, ``__``) around the value;
* ``junk``: characters in the value that are neither digits nor their usual OCR look-alikes (``ø07ó``, ``2Ÿ``);
* ``blank``: the template has a place for the value but nothing digit-like was read there;
* ``tall``: the value's digits are taller than the printed words of the line (``Số``, the printed year): handwriting
  is larger than 13-14 pt Times;
* ``date``: (number only) the day/month of the same document is a fill-in: the number and the date are written in
  by the same registration.

Ratios are relative to the line itself, so they hold at any resolution. Set on ``corpus/real`` (handwritten
digits: 1.2-1.3x the printed height) against ``corpus/dev`` (printed numbers and dates: digits at most 1.05x).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .layout import Line, Token
from .repair import digit_of

TALL_NUMBER = 1.2  # number digits / height of the printed word "Số" (accent included) on the same line
TALL_DATE = 1.15  # day or month digits / height of the printed year digits on the same line
_LEADERS_RE = re.compile(r"\.{2,}|…|_{2,}|\.\s\.")
_ALLOWED = set("-/.,:;' \u2013")
# A template date line, however its fill-ins were read: "ngày.) {tháng & năm 2025", "ngà¿2háng0„ năm 2022".
TEMPLATE_DATE_RE = re.compile(r"\bng(?:ay|a)?(?P<d>.{0,12}?)t?h\s?ang(?P<m>.{0,12}?)\bnam\s*(?P<y>\d{4})\b")


@dataclass(frozen=True)
class FillIn:
    """What was seen about one value: the handwriting signs (empty: printed) and the OCR confidence of its words."""

    signs: tuple[str, ...]
    confidence: float

    @property
    def handwritten(self) -> bool:
        return bool(self.signs)


def _spans(line: Line) -> list[tuple[int, int, Token]]:
    out, pos = [], 0
    for tok in line.tokens:
        out.append((pos, pos + len(tok.text), tok))
        pos += len(tok.text) + 1
    return out


def tokens_in(line: Line, start: int, end: int) -> list[Token]:
    """Tokens of ``line`` overlapping the characters [start, end) of ``line.text``."""
    return [tok for s, e, tok in _spans(line) if s < end and e > start]


def _height(tok: Token) -> int:
    return tok.box[3] - tok.box[1] if tok.box else 0


def _has_junk(text: str) -> bool:
    return any(not (ch in _ALLOWED or digit_of(ch).isdigit()) for ch in text)


def _digit_only(tok: Token) -> bool:
    core = tok.text.strip(".,:;")
    return bool(core) and all(digit_of(ch).isdigit() for ch in core)


def _confidence(tokens: list[Token]) -> float:
    return min((t.conf for t in tokens), default=0.0)


def number_fill_in(line: Line, region: tuple[int, int], value: str | None, date_handwritten: bool) -> FillIn:
    """Signs around the number read in ``line.text[region]`` (between ``Số:`` and the ký hiệu)."""
    start, end = region
    raw = line.text[start:end]
    signs: list[str] = []
    if _LEADERS_RE.search(raw):
        signs.append("leaders")
    core = raw.strip(" .:")
    if core and _has_junk(core.replace(" ", "")):
        signs.append("junk")
    if not any(digit_of(ch).isdigit() for ch in core):
        signs.append("blank")
    spans = _spans(line)
    inside = [tok for s, e, tok in spans if s >= start and e <= end and _digit_only(tok)]
    label = next((tok for s, e, tok in spans if e <= start), None)
    if inside and label is not None and max(_height(t) for t in inside) > TALL_NUMBER * _height(label) > 0:
        signs.append("tall")
    if date_handwritten:
        signs.append("date")
    conf = _confidence(tokens_in(line, start, end)) if value else 0.0
    return FillIn(tuple(signs), conf)


def date_fill_in(line: Line, day: tuple[int, int], month: tuple[int, int], year: tuple[int, int]) -> FillIn:
    """Signs around the day and month of a date line (``line.text`` character spans), against the printed year."""
    signs: list[str] = []
    raws = [line.text[s:e] for s, e in (day, month)]
    if any(_LEADERS_RE.search(r) for r in raws):
        signs.append("leaders")
    cores = [r.strip(" .,") for r in raws]
    if any(c and _has_junk(c.replace(" ", "")) for c in cores):
        signs.append("junk")
    if any(not any(digit_of(ch).isdigit() for ch in c) for c in cores):
        signs.append("blank")
    years = [t for t in tokens_in(line, *year) if _digit_only(t)]
    filled = [t for s, e in (day, month) for t in tokens_in(line, s, e) if _digit_only(t)]
    if years and filled and max(_height(t) for t in filled) > TALL_DATE * _height(years[0]) > 0:
        signs.append("tall")
    conf = _confidence([t for s, e in (day, month) for t in tokens_in(line, s, e)])
    return FillIn(tuple(signs), conf)
