"""The OCR engine port: what every OCR adapter provides, and the one timeout it raises.

Adapters: ``ocr_models.tesseract.TesseractEngine`` (the tesseract command, one process per page) and
``ocr_models.tesserocr_engine.TesserocrEngine`` (tesseract in-process, the model loaded once per worker thread).
``flows.wiring`` builds the one ``Settings.ocr_engine`` names; flows call only these methods. To add an engine,
implement this Protocol and pass ``tests/test_engine_contract.py`` with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from schemas.errors import OcrError
from schemas.ocr import OcrWord, PageReading


class OcrTimeout(OcrError):
    """The engine ran over its time limit on one page or one set of lines (the caller decides what is lost)."""


class OcrEngine(Protocol):
    """Read pages and lines of text from images. Image files are written by the caller (grayscale or colour,
    any format OpenCV writes); every box is in that image's pixels, every text NFC with Eth fixed."""

    name: str  # the adapter, as ``Settings.ocr_engine`` names it (recorded in provenance)

    def languages(self) -> tuple[str, ...]:
        """The language models the engine reads with (e.g. ``("vie",)``); ``ToolMissingError`` if one is missing."""
        ...

    def recognize(self, image_path: Path, *, dpi: int, number: int) -> PageReading:
        """Read one page image once: its words, lines, confidences and warnings, and its text-only PDF layer.

        ``OcrTimeout`` past the engine's time limit; ``OcrError`` when the engine fails on the page."""
        ...

    def read_lines(self, images: list[Path], *, dpi: int) -> list[list[OcrWord]]:
        """Read each image as one text line (a line cut out of a page, re-read): the words of each, in order,
        ``[]`` where nothing was read. ``OcrTimeout`` past the time limit."""
        ...

    def detect_orientation(self, image_path: Path, *, dpi: int) -> int:
        """Clockwise rotation (0, 90, 180 or 270 degrees) that makes the page upright; 0 when unsure."""
        ...

    def provenance(self) -> dict[str, object]:
        """Tool versions, model file hashes and parameters, recorded with every derivative."""
        ...
