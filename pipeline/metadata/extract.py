"""Assemble ``DocumentMetadata`` from the header, title and footer rules, with per-field evidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage
from schemas.text import fold

from .footer import find_recipients, find_recipients_anchor, find_signature
from .found import Found
from .header import (
    compose_organ_name,
    find_code,
    find_date,
    find_marks,
    find_organ_lines,
    header_zone,
    type_from_notation,
)
from .layout import Line, PageLines, page_lines
from .repair import Lexicon
from .title import find_subject, find_title, find_vv_subject
from .vocab import OTHER_TYPE_CODE, TYPE_CODES


class _Builder:
    """Collects field values and their evidence."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.evidence: dict[str, FieldEvidence] = {}

    def put(self, field: str, found: Found[Any] | None, value: Any = None) -> None:
        if found is None:
            return
        self.values[field] = found.value if value is None else value
        self.evidence[field] = found.evidence()

    def build(self, page_count: int) -> DocumentMetadata:
        self.evidence["page_count"] = FieldEvidence(confidence=1.0)
        return DocumentMetadata(page_count=page_count, evidence=self.evidence, **self.values)


def _lowest(lines: list[Line | None]) -> Line | None:
    """The lowest of the header anchor lines that were found."""
    present = [ln for ln in lines if ln is not None]
    return max(present, key=lambda ln: (ln.yc, ln.order)) if present else None


def _is_party(first: PageLines, notation: str | None) -> bool:
    if notation:
        return "/" in notation
    top = " ".join(ln.folded for ln in first.lines[:12])
    return "cong san viet nam" in top


def _header(b: _Builder, first: PageLines, lexicon: Lexicon) -> tuple[Found[Any] | None, Line | None]:
    """Number, date, place, organ; returns the code finding and the lowest header line."""
    zone = header_zone(first)
    code = find_code(zone)
    date = find_date(zone, lexicon)
    if code:
        b.put("code_number", code if code.value.number else None, code.value.number)
        b.put("code_notation", code, code.value.notation)
    if date:
        b.put("issued_date", date, date.value.date)
        if date.value.place:
            b.put("place", Found(date.value.place, date.lines, date.certainty * 0.9))
    anchor = code.lines[0] if code else (date.lines[0] if date else None)
    organ = find_organ_lines(first, anchor, lexicon)
    if organ and organ.value:
        b.put("organ_lines", organ)
        b.put("organ_name", Found(compose_organ_name(organ.value), organ.lines, organ.certainty * 0.9))
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
    found = find_recipients_anchor(pages)
    page, anchor = found if found else (pages[-1], None)
    if anchor is not None:
        b.put("recipients", find_recipients(page, anchor, lexicon))
    sig = find_signature(page, anchor, party)
    if sig.authority is None and sig.name is None and page is not pages[-1]:
        sig = find_signature(pages[-1], None, party)
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
