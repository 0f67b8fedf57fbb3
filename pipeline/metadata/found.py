"""A value found on a page, with the line it came from and how sure the rule that found it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from schemas.metadata import FieldEvidence

from .layout import Box, Line

T = TypeVar("T")


@dataclass(frozen=True)
class Found(Generic[T]):
    """``value`` read from ``lines`` (first is the anchor); ``certainty`` 0..1 is the rule's own trust."""

    value: T
    lines: tuple[Line, ...]
    certainty: float
    raw: str | None = None

    def evidence(self) -> FieldEvidence:
        """Evidence for the metadata: certainty times mean OCR confidence of the source lines."""
        ocr, page, raw = 1.0, None, self.raw
        if self.lines:
            ocr = sum(ln.conf for ln in self.lines) / len(self.lines)
            page = self.lines[0].page
            raw = self.raw if self.raw is not None else " / ".join(ln.text for ln in self.lines)
        conf = max(0.0, min(1.0, self.certainty * ocr))
        return FieldEvidence(confidence=round(conf, 3), page=page, raw=raw, box=self.box())

    def box(self) -> Box | None:
        """The union of the boxes of the source lines on the anchor's page (``None``: no line has a box, e.g. a
        plain-text reading)."""
        if not self.lines:
            return None
        page = self.lines[0].page
        boxes = [ln.box for ln in self.lines if ln.page == page and ln.box is not None]
        if not boxes:
            return None
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
