"""hOCR: read tesseract's into ``OcrPage`` words (the command-line adapter), write the stored derivative from an
``OcrPage`` (every engine).

The stored ``pages/<n>.hocr`` is written by ``hocr_from_page`` from the page as the flow finished it (re-read lines
merged), so no engine has to produce hOCR itself; ``words_from_hocr`` reads it back word for word.
"""

from __future__ import annotations

import re
from html import escape
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


def page_of_words(words: list[OcrWord], *, number: int, dpi: int, size: tuple[int, int]) -> OcrPage:
    """A page from its words in engine order: text by lines and blocks, mean word confidence."""
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    return OcrPage(number=number, text=text_from_words(words), words=words, confidence=confidence,
                   width=size[0], height=size[1], dpi=dpi)


def page_from_hocr(hocr: str, *, number: int, dpi: int) -> OcrPage:
    words, size = words_from_hocr(hocr)
    return page_of_words(words, number=number, dpi=dpi, size=size)


_PAGE_START_RE = re.compile(r"<div class=['\"]ocr_page['\"]")


def split_hocr_pages(hocr: str) -> list[str]:
    """The ``ocr_page`` divisions of a multi-page hOCR document, each as its own parseable fragment."""
    starts = [m.start() for m in _PAGE_START_RE.finditer(hocr)]
    return [hocr[a:b] for a, b in zip(starts, [*starts[1:], len(hocr)], strict=True)]


_HOCR_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="vi" lang="vi">\n <head>\n  <title></title>\n'
    '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>\n'
    '  <meta name="ocr-system" content="{system}"/>\n'
    '  <meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_line ocrx_word"/>\n </head>\n <body>\n'
)


def _union(boxes: list[tuple[int, int, int, int]]) -> str:
    return (f"bbox {min(b[0] for b in boxes)} {min(b[1] for b in boxes)} "
            f"{max(b[2] for b in boxes)} {max(b[3] for b in boxes)}")


def hocr_from_page(page: OcrPage, *, system: str = "sohoa") -> str:
    """The page as an hOCR document: one ``ocr_carea`` per block, ``ocr_line`` per line, ``ocrx_word`` per word
    (box, confidence as ``x_wconf`` 0..100), in the page's word order."""
    out = [_HOCR_HEAD.format(system=escape(system)),
           f"  <div class='ocr_page' id='page_1' title='image \"\"; bbox 0 0 {page.width} {page.height}; "
           f"ppageno 0; scan_res {page.dpi} {page.dpi}'>\n"]
    blocks: list[list[list[OcrWord]]] = []
    last_block: int | None = None
    for line in page.lines():
        if line[0].block != last_block:
            blocks.append([])
            last_block = line[0].block
        blocks[-1].append(line)
    n_word = 0
    for b, block in enumerate(blocks, start=1):
        block_box = _union([w.box for line in block for w in line])
        out.append(f"   <div class='ocr_carea' id='block_1_{b}' title=\"{block_box}\">\n")
        for n_line, line in enumerate(block, start=1):
            line_box = _union([w.box for w in line])
            out.append(f"    <span class='ocr_line' id='line_1_{b}_{n_line}' title=\"{line_box}\">")
            for w in line:
                n_word += 1
                x0, y0, x1, y1 = w.box
                out.append(f"\n     <span class='ocrx_word' id='word_1_{n_word}' title='bbox {x0} {y0} {x1} {y1}; "
                           f"x_wconf {round(w.confidence * 100)}'>{escape(w.text, quote=False)}</span>")
            out.append("\n    </span>\n")
        out.append("   </div>\n")
    out.append("  </div>\n </body>\n</html>\n")
    return "".join(out)
