"""Citations of other documents in page text: ``Căn cứ Nghị quyết số 15-NQ/TU ngày 12/3/2021``, ``thay thế
Quyết định số 123/QĐ-UBND``, ``Nghị định số 45/2024/NĐ-CP``.

A citation is a type word (``vocab.TITLE_TYPES`` and ``Văn bản``, ``Luật``), ``số``, a number and a ký hiệu,
optionally followed by ``ngày dd/mm/yyyy`` or ``ngày d tháng m năm y``. It is found on the folded text (tone slips
of OCR do not matter; ``schemas.text.fold`` keeps the length of the NFC text, so spans are offsets into it),
across line breaks and spaces around ``-``/``/``; the number's digit look-alikes are read as digits
(``pipeline.metadata.repair.to_digits``) and the ký hiệu's parts must be written in capitals or digits, as
printed. The year inside a state number (``45/2024/NĐ-CP``) is not part of the ký hiệu, exactly as the header
reader (``pipeline.metadata.header``) stores it; it constrains the year instead. ``key`` is the index's folded
số/ký hiệu key (``schemas.query.code_key``): ``15-NQ/TU`` → ``15 nq tu``, ``123/QĐ-UBND`` → ``123 qd ubnd``.

Pure: text in, citations out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pipeline.metadata.repair import to_digits
from pipeline.metadata.vocab import TITLE_TYPES
from schemas.query import code_key
from schemas.text import fold, nfc

EXTRA_TYPES = ("Văn bản", "Luật", "Pháp lệnh", "Nghị quyết liên tịch", "Thông tư liên tịch")
_TYPE_NAMES = {fold(name): name for name in (*TITLE_TYPES, *EXTRA_TYPES)}
_TYPES = "|".join(r"\s+".join(map(re.escape, name.split())) for name in sorted(_TYPE_NAMES, key=len, reverse=True))
_SEP = r"\s*[-\u2013/]\s*"
_CITE_RE = re.compile(
    rf"(?<![a-z0-9])(?P<type>{_TYPES})\s+so\s*[:.]?\s*(?P<num>[0-9oilj|]{{1,5}}){_SEP}"
    rf"(?P<nota>[a-z0-9]{{1,10}}(?:{_SEP}[a-z0-9]{{1,10}}){{0,4}})"
)
_PART_RE = re.compile(r"[-\u2013/]")
_DATE_RE = re.compile(
    r"\s*[,(]?\s*ngay\s*(?P<d>\d{1,2})\s*(?:[/.-]|\s+thang\s+)\s*(?P<m>\d{1,2})\s*(?:[/.-]|\s+nam\s+)\s*(?P<y>\d{4})"
    r"(?![0-9])"
)
_MIN_YEAR, _MAX_YEAR = 1930, 2100
MAX_CITATIONS = 200  # per text: a page is not a register of every number ever issued


@dataclass(frozen=True)
class Citation:
    """One citation: ``[start, end)`` in the NFC text (type word to ký hiệu, or to the date when one follows)."""

    start: int
    end: int
    type_name: str  # canonical (``Nghị quyết``)
    number: str  # digits as printed (``15``, ``05``; look-alikes read as digits)
    notation: str  # as printed, spaces removed, without a year part (``NQ/TU``, ``QĐ-UBND``, ``NĐ-CP``)
    key: str  # ``schemas.query.code_key(number, notation)``
    date: str | None = None  # ISO, when the citation gives a valid date
    year: int | None = None  # the date's year, else the year inside the number (``45/2024/NĐ-CP``)

    @property
    def query(self) -> str:
        """The số/ký hiệu as a search query (``15-NQ/TU``, ``123/QĐ-UBND``): a number lookup."""
        party = "/" in self.notation
        return f"{self.number}{'-' if party else '/'}{self.notation}"


def _parts(text: str) -> list[str]:
    return [p.strip() for p in _PART_RE.split(text)]


def _printed_part(part: str) -> bool:
    """A ký hiệu part as printed: capitals and digits only (``NQ``, ``UBND``, ``QH13``, ``2024``)."""
    return bool(part) and all(ch.isdigit() or ch.isupper() for ch in part) and part.isalnum()


def _notation(original: str, start: int, end: int) -> tuple[str, int | None, int] | None:
    """(ký hiệu without a year part, that year, end offset) of the raw notation ``original[start:end]``: its
    parts up to the first that is not printed in capitals/digits; None without a letter part."""
    raw = original[start:end]
    pieces = list(re.finditer(r"[^-\u2013/\s]+", raw))
    kept: list[str] = []
    stop = start
    for piece in pieces:
        if not _printed_part(piece.group(0)):
            break
        kept.append(piece.group(0))
        stop = start + piece.end()
    year = None
    if len(kept) > 1 and kept[0].isdigit() and len(kept[0]) == 4 and _MIN_YEAR <= int(kept[0]) <= _MAX_YEAR:
        year, kept = int(kept[0]), kept[1:]
    if not kept or not any(ch.isalpha() for p in kept for ch in p) or kept[0].isdigit():
        return None
    seps = re.findall(r"[-\u2013/]", original[start:stop])
    seps = seps[-(len(kept) - 1):] if len(kept) > 1 else []
    notation = kept[0] + "".join(s.replace("\u2013", "-") + p for s, p in zip(seps, kept[1:], strict=True))
    return notation, year, stop


def _date(folded: str, at: int) -> tuple[str | None, int]:
    """(ISO date, end offset) of a ``ngày ...`` right after ``at`` (None, ``at`` when there is none or it is
    not a real date)."""
    m = _DATE_RE.match(folded, at)
    if not m:
        return None, at
    try:
        day = dt.date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    except ValueError:
        return None, at
    if not _MIN_YEAR <= day.year <= _MAX_YEAR:
        return None, at
    return day.isoformat(), m.end()


def find_citations(text: str) -> list[Citation]:
    """Every citation in ``text`` (offsets into ``nfc(text)``), in order."""
    original = nfc(text)
    folded = fold(original)
    if len(folded) != len(original):  # fold keeps the NFC length; never cut at wrong offsets
        return []
    out: list[Citation] = []
    for m in _CITE_RE.finditer(folded):
        number = to_digits(original[m.start("num"):m.end("num")])
        if number is None or not any(ch.isdigit() for ch in original[m.start("num"):m.end("num")]):
            continue
        parsed = _notation(original, m.start("nota"), m.end("nota"))
        if parsed is None:
            continue
        notation, year, end = parsed
        key = code_key(number, notation)
        if key is None:
            continue
        date, date_end = _date(folded, end)
        type_name = _TYPE_NAMES[re.sub(r"\s+", " ", m.group("type"))]
        out.append(Citation(start=m.start(), end=date_end, type_name=type_name, number=number,
                            notation=notation, key=key, date=date,
                            year=int(date[:4]) if date else year))
        if len(out) >= MAX_CITATIONS:
            break
    return out


def segments(text: str, citations: list[Citation]) -> list[tuple[str, Citation | None]]:
    """``nfc(text)`` cut into plain pieces and citation pieces, in order."""
    original = nfc(text)
    out: list[tuple[str, Citation | None]] = []
    last = 0
    for c in sorted(citations, key=lambda c: c.start):
        if c.start < last:
            continue
        if c.start > last:
            out.append((original[last:c.start], None))
        out.append((original[c.start:c.end], c))
        last = c.end
    if last < len(original):
        out.append((original[last:], None))
    return out
