"""Query hits on a page scan: which OCR words a query's words match, as boxes in percent of the page. Pure.

The words and their boxes come from a page's stored hOCR (read by ``ocr_models.hocr.words_from_hocr``); the
folding is ``schemas.text.tokens``, the one search matches with. A word matches when one of its folded tokens is
a wanted (query) word, so ``15-NQ/TU`` matches ``nq`` and every word of a phrase is marked on its own.

Boxes are given in percent of the page's size (the hOCR ``ocr_page`` bbox), so a page image of any size and at any
zoom lines up with them: the stored page image has the geometry of the image the OCR read.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from schemas.ocr import OcrWord
from schemas.text import tokens

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class WordBox:
    """One OCR word of a page: its text, its folded tokens and its box (pixels, clipped to the page)."""

    text: str
    tokens: frozenset[str]
    box: Box


@dataclass(frozen=True)
class PageWords:
    """A page's words in the stored (engine reading) order and the page size in pixels."""

    width: int
    height: int
    words: tuple[WordBox, ...]


@dataclass(frozen=True)
class HitBox:
    """A matched word's box in percent of the page (left, top, width, height)."""

    text: str
    left: float
    top: float
    width: float
    height: float


def page_words(words: Iterable[OcrWord], size: tuple[int, int]) -> PageWords | None:
    """The page's words with a usable box; ``None`` when the page size is unusable (a malformed hOCR).

    A word box is clipped to the page; a word without area inside the page is left out (it cannot be drawn)."""
    width, height = size
    if width <= 0 or height <= 0:
        return None
    kept = []
    for word in words:
        x0, y0, x1, y1 = word.box
        x0, x1 = max(0, min(width, x0)), max(0, min(width, x1))
        y0, y1 = max(0, min(height, y0)), max(0, min(height, y1))
        if x1 <= x0 or y1 <= y0:
            continue
        kept.append(WordBox(text=word.text, tokens=frozenset(tokens(word.text)), box=(x0, y0, x1, y1)))
    return PageWords(width=width, height=height, words=tuple(kept))


def matching_words(page: PageWords, wanted: Set[str]) -> list[WordBox]:
    """The page's words one of whose folded tokens is a wanted word, in page order."""
    if not wanted:
        return []
    return [w for w in page.words if not w.tokens.isdisjoint(wanted)]


def hit_boxes(page: PageWords, wanted: Set[str]) -> list[HitBox]:
    """The boxes to draw over the page image for the wanted words (percent of the page, 3 decimals)."""
    out = []
    for word in matching_words(page, wanted):
        x0, y0, x1, y1 = word.box
        out.append(HitBox(text=word.text, left=_pct(x0, page.width), top=_pct(y0, page.height),
                          width=_pct(x1 - x0, page.width), height=_pct(y1 - y0, page.height)))
    return out


def _pct(value: int, whole: int) -> float:
    return round(100.0 * value / whole, 3)
