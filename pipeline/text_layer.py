"""A page's invisible text layer rewritten from its corrected text (issue 22: a page-text correction regenerates
that page's text layer in the PDF/A). Pure: no store, no files but the PDFs it is handed.

The corrected text is laid over the page's stored hOCR: its lines are paired with the hOCR lines as the review
beside the scan pairs them (``pipeline.review_scan.pair_lines``: equal lines, and the lines of a replaced run of the
same length); the text lines left over between two pairs go to the unpaired hOCR lines between them (spread
evenly), or, when there are none, onto the paired line before them. A text line whose words match its hOCR line's
in number takes their boxes word by word; otherwise its words are spread over the line's box by their length.

The layer is written as tesseract writes its own (``textonly_pdf=1``), reusing the page's existing font resource
(tesseract's GlyphLessFont: Type0, Identity-H, 2-byte codes = Unicode code points, ToUnicode identity, glyph width
500/1000 em): ``BT 3 Tr`` (invisible), per word ``Tf`` (size from the box height), ``Tz`` (the word spans its box),
``Tm`` at the box's bottom, the UTF-16BE code points in hex, ``Tj``, ``ET``. Nothing new is embedded. Characters
outside the Basic Multilingual Plane have no 2-byte code in that font: they are left out (``TextLayer.skipped``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pikepdf
from pikepdf import Name

from pipeline.review_scan import Box, LineReading, line_readings, pair_lines, union
from schemas.ocr import OcrWord

GLYPH_WIDTH = 0.5  # GlyphLessFont: every glyph advances 500/1000 em (its /DW)
GLYPHLESS = "/GlyphLessFont"


class NoTextFont(ValueError):
    """The page has no GlyphLessFont resource to reuse (not a page sohoa assembled)."""


@dataclass(frozen=True)
class PlacedWord:
    text: str
    box: Box  # pixels of the OCR image (x0, y0, x1, y1), y downwards


@dataclass(frozen=True)
class TextLayer:
    content: bytes  # the content stream
    words: int
    skipped: int  # characters left out (outside the BMP)


def _lines_of(words: Sequence[OcrWord]) -> list[list[OcrWord]]:
    grouped: dict[tuple[int, int], list[OcrWord]] = {}
    for word in words:
        grouped.setdefault((word.block, word.line), []).append(word)
    return list(grouped.values())


def _assign(readings: list[LineReading], text_lines: list[str]) -> dict[int, list[int]]:
    """{hOCR line: [text lines laid on it]}; every non-empty text line is laid on one line when there is any."""
    pairs = pair_lines(readings, text_lines)
    out: dict[int, list[int]] = {r: [t] for r, t in enumerate(pairs) if t is not None}
    paired = sorted((t, r) for r, t in enumerate(pairs) if t is not None)
    anchors = [(-1, -1), *paired, (len(text_lines), len(readings))]
    for (t0, r0), (t1, r1) in pairwise(anchors):
        free_text = [t for t in range(t0 + 1, t1) if text_lines[t].strip()]
        free_lines = [r for r in range(r0 + 1, r1) if pairs[r] is None]
        if not free_text:
            continue
        if free_lines:
            for j, t in enumerate(free_text):
                out.setdefault(free_lines[j * len(free_lines) // len(free_text)], []).append(t)
        elif readings:
            target = r0 if r0 >= 0 else min(r1, len(readings) - 1)
            out.setdefault(target, []).extend(free_text)
    return out


def _spread(words: list[str], box: Box) -> list[PlacedWord]:
    x0, y0, x1, y1 = box
    gap = max(1, (y1 - y0) // 3)
    total = sum(len(w) for w in words) or 1
    room = max(len(words), (x1 - x0) - gap * (len(words) - 1))
    out, x = [], x0
    for word in words:
        width = max(1, round(room * len(word) / total))
        out.append(PlacedWord(word, (x, y0, min(x1, x + width), y1)))
        x += width + gap
    return out


def place_words(words: Sequence[OcrWord], text: str, size: tuple[int, int]) -> list[PlacedWord]:
    """The words of ``text`` (a page's corrected text) with boxes (OCR pixels), laid over the page's hOCR
    ``words``; a page without hOCR lines gets its text lines stacked from the top, each across the page."""
    text_lines = text.split("\n")
    lines = _lines_of(words)
    readings = line_readings(words)
    if not lines:
        filled = [line for line in text_lines if line.strip()]
        band = max(1, size[1] // max(1, len(filled)) // 2)
        return [w for i, line in enumerate(filled)
                for w in _spread(line.split(), (0, i * band, max(1, size[0]), (i + 1) * band))]
    out: list[PlacedWord] = []
    for r, assigned in sorted(_assign(readings, text_lines).items()):
        new = [w for t in assigned for w in text_lines[t].split()]
        line = lines[r]
        if len(new) == len(line):
            out += [PlacedWord(n, w.box) for n, w in zip(new, line, strict=True)]
        elif new:
            out += _spread(new, union([w.box for w in line]))
    return out


def _hex(text: str) -> tuple[str, int]:
    kept = [c for c in text if ord(c) <= 0xFFFF and not 0xD800 <= ord(c) <= 0xDFFF]
    return "".join(f"{ord(c):04X}" for c in kept), len(text) - len(kept)


def text_layer(words: Sequence[PlacedWord], size: tuple[int, int], media: tuple[float, float], font: str) -> TextLayer:
    """The invisible text content stream of ``words`` (boxes in pixels of an OCR image of ``size``) on a page of
    ``media`` (width, height in points), in the page's font resource ``font`` (its name, e.g. ``/f-0-0``)."""
    sx, sy = media[0] / max(1, size[0]), media[1] / max(1, size[1])
    ops, count, skipped = ["BT", "3 Tr"], 0, 0
    for word in words:
        code, lost = _hex(word.text)
        skipped += lost
        glyphs = len(code) // 4
        if not glyphs:
            continue
        x0, y0, x1, y1 = word.box
        font_size = max(1.0, (y1 - y0) * sy)
        width = max(0.5, (x1 - x0) * sx)
        scale = 100.0 * width / (glyphs * GLYPH_WIDTH * font_size)
        ops.append(f"{font} {font_size:.2f} Tf {scale:.3f} Tz 1 0 0 1 {x0 * sx:.2f} {media[1] - y1 * sy:.2f} Tm "
                   f"<{code}0020> Tj")
        count += 1
    ops.append("ET")
    return TextLayer(content=("\n".join(ops) + "\n").encode("ascii"), words=count, skipped=skipped)


def text_font(page: pikepdf.Page) -> str:
    """The name of the page's GlyphLessFont resource (``NoTextFont`` when it has none)."""
    fonts = page.Resources.get(Name.Font, pikepdf.Dictionary())
    for name, font in fonts.items():
        if str(font.get(Name.BaseFont, "")) == GLYPHLESS:
            return str(name)
    raise NoTextFont("trang không có phông GlyphLessFont của lớp chữ")


def media_size(page: pikepdf.Page) -> tuple[float, float]:
    box = [float(v) for v in page.mediabox]
    return box[2] - box[0], box[3] - box[1]


_BT = re.compile(rb"(?:^|\s)BT\s")


def _is_text(stream: pikepdf.Object) -> bool:
    return _BT.search(stream.read_bytes()) is not None


def replace_text_layers(source: Path, out_path: Path, layers: Mapping[int, bytes]) -> None:
    """Write ``source`` (a PDF/A sohoa assembled) to ``out_path`` with the text layer of each page in ``layers``
    (1-based page number: content stream) replaced: the page's other content streams (the image drawing), its
    resources, every other page and the PDF/A identification (XMP, output intent, document info) are kept as
    they are."""
    with pikepdf.open(source) as pdf:
        for number, content in layers.items():
            page = pdf.pages[number - 1]
            contents = page.obj.get(Name.Contents)
            streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents] if contents else []
            kept = [s for s in streams if not _is_text(s)]
            page.obj[Name.Contents] = pikepdf.Array([*kept, pdf.make_indirect(pikepdf.Stream(pdf, content))])
        pdf.save(out_path, deterministic_id=True, compress_streams=True, min_version="1.7")
