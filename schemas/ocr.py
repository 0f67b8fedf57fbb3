"""OCR results and the OCR engine port.

Stages in ``pipeline`` ask for an ``OcrEngine``; adapters in ``ocr_models`` implement it. Nothing else calls
tesseract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field


class OcrWord(BaseModel):
    """One recognised word; box in pixels of the OCR image (x0, y0, x1, y1)."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float = Field(ge=0.0, le=1.0)
    line: int = 0  # index of the text line within the page (reading order of the engine)
    block: int = 0


class OcrPage(BaseModel):
    """OCR of one page: NFC text (Eth fixed), words with boxes, mean word confidence."""

    number: int
    text: str
    words: list[OcrWord] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    width: int
    height: int
    dpi: int


class OcrOutputs(BaseModel):
    """Files an engine wrote for one page."""

    hocr: Path
    text_pdf: Path  # text-only PDF layer (invisible text), same page geometry as the OCR image


class OcrEngine(Protocol):
    """What every OCR adapter provides."""

    def recognize(self, image_path: Path, *, dpi: int, out_base: Path) -> OcrOutputs:
        """OCR one page image once; write ``out_base``.hocr and ``out_base``.pdf (text only)."""
        ...

    def read_lines(self, images: list[Path], *, dpi: int, out_base: Path) -> list[list[OcrWord]]:
        """Read each image as one text line (a line cut out of a page); the words of each, in order."""
        ...

    def provenance(self) -> dict[str, object]:
        """Tool versions, model file hashes and parameters, recorded with every derivative."""
        ...
