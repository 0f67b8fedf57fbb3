"""OCR results: words with boxes and confidences, a page, and what one engine run returns.

The engine port (``ocr_models.engine.OcrEngine``) returns these; ``ocr_models`` adapters produce them, the stored
hOCR derivative is written from them (``ocr_models.hocr.hocr_from_page``), and ``pipeline`` stages read them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class OcrWord(BaseModel):
    """One recognised word; box in pixels of the OCR image (x0, y0, x1, y1)."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float = Field(ge=0.0, le=1.0)
    line: int = 0  # index of the text line within the page (reading order of the engine)
    block: int = 0


class OcrPage(BaseModel):
    """OCR of one page: NFC text (Eth fixed), words with boxes, mean word confidence.

    ``warnings`` are the engine's own doubts about the page as codes (``ocr_models.tools.OcrWarning``, e.g.
    ``poor_diacritics`` for tesseract's "lots of diacritics - possibly poor OCR"); the flow turns them into
    review reasons."""

    number: int
    text: str
    words: list[OcrWord] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    width: int
    height: int
    dpi: int
    warnings: list[str] = Field(default_factory=list)

    def lines(self) -> list[list[OcrWord]]:
        """The words grouped by text line, in the engine's reading order."""
        grouped: dict[tuple[int, int], list[OcrWord]] = {}
        for word in self.words:
            grouped.setdefault((word.block, word.line), []).append(word)
        return list(grouped.values())


class PageReading(BaseModel):
    """What one engine run on a page returns: the page read, and its invisible text layer.

    ``text_pdf`` is a one-page, text-only PDF (glyph-less embedded font, text render mode 3) with the geometry of
    the OCR image at its resolution: ``pipeline.pdfa`` draws the page image under it."""

    page: OcrPage
    text_pdf: bytes
