"""Assemble ``DocumentMetadata`` from the header, title and footer rules, with per-field evidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage
from schemas.text import fold

from .footer import document_pages, find_recipients, find_recipients_anchor, find_signature
from .found import Found
from .handwriting import number_fill_in
from .header import (
    Code,
    DatePlace,
    compose_organ_name,
    find_code,
    find_date,
    find_marks,
    find_organ_lines,
    header_zone,
    type_from_notation,
)
from .layout import Line, PageLines, page_lines
from .notation import REPAIRED_CERTAINTY, repair_notation
from .recipients_unheaded import find_unheaded_recipients
from .repair import Lexicon
from .title import find_subject, find_title, find_vv_subject
from .vocab import OTHER_TYPE_CODE, TYPE_CODES


class _Builder:
    """Collects field values and their evidence."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.evidence: dict[str, FieldEvidence] = {}
        self.handwritten: list[str] = []

    def put(self, field: str, found: Found[Any] | None, value: Any = None) -> None:
        if found is None:
            return
        self.values[field] = found.value if value is None else value
        self.evidence[field] = found.evidence()

    def build(self, page_count: int) -> DocumentMetadata:
        self.evidence["page_count"] = FieldEvidence(confidence=1.0)
        return DocumentMetadata(
            page_count=page_count, evidence=self.evidence, handwritten=self.handwritten, **self.values
        )


def _lowest(lines: list[Line | None]) -> Line | None:
    """The lowest of the header anchor lines that were found."""
    present = [ln for ln in lines if ln is not None]
    return max(present, key=lambda ln: (ln.yc, ln.order)) if present else None


def _is_party(first: PageLines, notation: str | None) -> bool:
    if notation:
        return "/" in notation
    top = " ".join(ln.folded for ln in first.lines[:12])
    return "cong san viet nam" in top


def _handwritten(b: _Builder, field: str, found: Found[Any], signs: tuple[str, ...], raw: str | None) -> None:
    """Leave ``field`` empty: its value is a handwritten fill-in (the signs and the printed text are the evidence)."""
    b.handwritten.append(field)
    b.evidence[field] = FieldEvidence(confidence=0.0, page=found.lines[0].page, raw=f"{raw or ''} [{', '.join(signs)}]")


def _put_date(b: _Builder, date: Found[DatePlace]) -> bool:
    """The issued date (or its handwritten mark) and the place; True when the date is handwritten."""
    value = date.value
    if value.date is None and value.fill is not None:
        _handwritten(b, "issued_date", date, value.fill.signs, date.raw)
    elif value.date:
        b.put("issued_date", date, value.date)
    if value.place:
        b.put("place", Found(value.place, date.lines, (date.certainty or 0.95) * 0.9))  # 0: a handwritten date
    return "issued_date" in b.handwritten


def _put_code(b: _Builder, code: Found[Code], date_handwritten: bool, organ_lines: list[str]) -> None:
    value = code.value
    line = code.lines[0]
    fill = number_fill_in(line, value.region, value.number, date_handwritten)
    if fill.handwritten:
        _handwritten(b, "code_number", code, fill.signs, line.text[value.region[0] : value.region[1]])
    elif value.number:
        b.put("code_number", code, value.number)
    notation, repaired = repair_notation(value.notation, organ_lines)
    b.put("code_notation", Found(notation, code.lines, code.certainty * (REPAIRED_CERTAINTY if repaired else 1.0),
                                 code.raw))


def _header(b: _Builder, first: PageLines, lexicon: Lexicon) -> tuple[Found[Any] | None, Line | None]:
    """Number, date, place, organ; returns the code finding and the lowest header line."""
    zone = header_zone(first)
    code = find_code(zone)
    date = find_date(zone, lexicon)
    date_handwritten = _put_date(b, date) if date else False
    anchor = code.lines[0] if code else (date.lines[0] if date else None)
    organ = find_organ_lines(first, anchor, lexicon)
    if organ and organ.value:
        b.put("organ_lines", organ)
        b.put("organ_name", Found(compose_organ_name(organ.value), organ.lines, organ.certainty * 0.9))
    if code:
        _put_code(b, code, date_handwritten, organ.value if organ else [])
    return code, _lowest([code.lines[0] if code else None, date.lines[0] if date else None])


def _type_and_subject(
    b: _Builder, first: PageLines, code: Found[Any] | None, below: Line | None, lexicon: Lexicon
) -> None:
    title = find_title(first, below)
    subject = find_subject(first, title.lines[0], lexicon) if title else None
    if subject is None and code is not None:
        subject = find_vv_subject(first, code.lines[0], lexicon)
    b.put("subject", subject)
    by_code = type_from_notation(code.value.notation) if code else None
    if title:
        name = title.value
        if by_code and fold(by_code) != fold(name) and title.certainty < 0.9:
            name = by_code
        b.put("type_name", title, name)
    elif by_code and code:
        b.put("type_name", Found(by_code, code.lines, 0.8))
    elif subject and subject.value.startswith("V/v"):
        b.put("type_name", Found("Công văn", subject.lines, 0.7))
    type_name = b.values.get("type_name")
    if type_name:
        b.values["type_code"] = TYPE_CODES.get(type_name, OTHER_TYPE_CODE)
        b.evidence["type_code"] = b.evidence["type_name"]


def _footer(b: _Builder, pages: list[PageLines], party: bool, lexicon: Lexicon) -> None:
    last = document_pages(pages)[-1]  # annexes (PHỤ LỤC) carry forms with their own footers
    found = find_recipients_anchor(pages)
    page, anchor = found if found else (last, None)
    if anchor is not None:
        b.put("recipients", find_recipients(page, anchor, lexicon))
    elif (unheaded := find_unheaded_recipients(pages, lexicon)) is not None:
        b.put("recipients", unheaded[1])
    sig = find_signature(page, anchor, party)
    if sig.authority is None and sig.name is None and sig.title is None and page is not last:
        sig = find_signature(last, None, party)
    b.put("authority", sig.authority)
    b.put("signer_title", sig.title)
    b.put("signer", sig.name)


def extract_metadata(pages: Sequence[OcrPage]) -> DocumentMetadata:
    """Archival metadata of one document from its OCR pages (page 1 first)."""
    b = _Builder()
    layouts = [page_lines(p) for p in pages]
    layouts = [pl for pl in layouts if pl.lines]
    if not layouts:
        return b.build(len(pages))
    lexicon = Lexicon([[(t.text, t.conf) for t in ln.tokens] for pl in layouts for ln in pl.lines])
    first = layouts[0]
    code, below = _header(b, first, lexicon)
    _type_and_subject(b, first, code, below, lexicon)
    for kind, mark in find_marks(layouts).items():
        b.put(kind, mark)
    party = _is_party(first, b.values.get("code_notation"))
    _footer(b, layouts, party, lexicon)
    return b.build(len(pages))
