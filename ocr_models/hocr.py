"""Parse tesseract hOCR into ``OcrPage`` words (boxes, confidences, line and block indices)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from schemas.ocr import OcrPage, OcrWord
from schemas.text import clean_ocr_text

_BBOX_RE = re.compile(r"bbox (\d+) (\d+) (\d+) (\d+)")
_CONF_RE = re.compile(r"x_wconf (\d+(?:\.\d+)?)")


class _HocrWords(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[OcrWord] = []
        self.size = (0, 0)
        self._stack: list[str] = []
        self._line = -1
        self._block = -1
        self._word: dict[str, object] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = a.get("class") or ""
        title = a.get("title") or ""
        self._stack.append(cls)
        if cls == "ocr_page":
            m = _BBOX_RE.search(title)
            if m:
                self.size = (int(m.group(3)), int(m.group(4)))
        elif cls == "ocr_carea":
            self._block += 1
        elif cls in ("ocr_line", "ocr_caption", "ocr_textfloat", "ocr_header"):
            self._line += 1
        elif cls == "ocrx_word":
            m = _BBOX_RE.search(title)
            c = _CONF_RE.search(title)
            box = tuple(int(g) for g in m.groups()) if m else (0, 0, 0, 0)
            self._word = {"box": box, "conf": float(c.group(1)) / 100.0 if c else 0.0}
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        cls = self._stack.pop() if self._stack else ""
        if cls == "ocrx_word" and self._word is not None:
            text = clean_ocr_text("".join(self._text)).strip()
            if text:
                box = self._word["box"]
                conf = self._word["conf"]
                assert isinstance(box, tuple) and isinstance(conf, float)
                self.words.append(
                    OcrWord(text=text, box=box, confidence=min(1.0, conf), line=self._line, block=self._block)
                )
            self._word = None

    def handle_data(self, data: str) -> None:
        if self._word is not None:
            self._text.append(data)


def words_from_hocr(hocr: str) -> tuple[list[OcrWord], tuple[int, int]]:
    """Words in engine reading order and the page size (width, height) in pixels."""
    parser = _HocrWords()
    parser.feed(hocr)
    parser.close()
    return parser.words, parser.size


def text_from_words(words: list[OcrWord]) -> str:
    """Page text: words joined by spaces within a line, lines by newlines, blocks by blank lines."""
    out: list[str] = []
    prev_line, prev_block = None, None
    for w in words:
        if prev_line is None:
            out.append(w.text)
        elif w.block != prev_block:
            out.append("\n\n" + w.text)
        elif w.line != prev_line:
            out.append("\n" + w.text)
        else:
            out.append(" " + w.text)
        prev_line, prev_block = w.line, w.block
    return "".join(out)


def page_from_hocr(hocr: str, *, number: int, dpi: int) -> OcrPage:
    words, (width, height) = words_from_hocr(hocr)
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    return OcrPage(
        number=number,
        text=text_from_words(words),
        words=words,
        confidence=confidence,
        width=width,
        height=height,
        dpi=dpi,
    )


_PAGE_START_RE = re.compile(r"<div class=['\"]ocr_page['\"]")


def split_hocr_pages(hocr: str) -> list[str]:
    """The ``ocr_page`` divisions of a multi-page hOCR document, each as its own parseable fragment."""
    starts = [m.start() for m in _PAGE_START_RE.finditer(hocr)]
    return [hocr[a:b] for a, b in zip(starts, [*starts[1:], len(hocr)], strict=True)]
