"""Digits read as the one-stroke letters that look like them: ``COVID-I9``, ``l4 giờ`` → ``1``.

Tesseract's ``vie`` model reads a ``1`` of a degraded or low-resolution scan as ``I`` or ``l``. Inside a group of
digits such a letter is no letter: a piece of a word (split at ``- / . , :`` and parentheses) made of digits and
only these two letters, with at least as many digits as letters, is a number, and each letter is read as ``1``.
Nothing else changes: a piece without a digit (``COVID``, ``I``, the Roman ``II``), another letter (``8U``,
``H5N1``), a piece with more letters than digits (``Il1``), or a bracket or rule (``|2025``, ``[9]``: table borders
and references are not digits) stays as read.
The engine also prints a slash as the fraction slash ``⁄`` (U+2044) or the division slash ``∕`` (U+2215)
(``V⁄v``, ``t⁄h``): neither occurs in Vietnamese administrative text, so both are read as ``/``.
Pure: words in, words out (boxes and confidences kept).
"""

from __future__ import annotations

import re

from schemas.ocr import OcrPage

_STROKES = "Il"  # capital i and small L: one vertical stroke, read for 1
_PIECE = re.compile(r"([-/.,:()]+)")
_SLASHES = str.maketrans({"\u2044": "/", "\u2215": "/"})


def _fixed_piece(piece: str) -> str:
    digits = sum(ch.isdigit() for ch in piece)
    strokes = sum(ch in _STROKES for ch in piece)
    if not digits or not strokes or strokes > digits or digits + strokes != len(piece):
        return piece
    return "".join("1" if ch in _STROKES else ch for ch in piece)


def fix_word(text: str) -> str:
    """``text`` with its slashes plain and the one-stroke glyphs of its digit groups read as ``1``."""
    text = text.translate(_SLASHES)
    return "".join(_fixed_piece(piece) if i % 2 == 0 else piece for i, piece in enumerate(_PIECE.split(text)))


def fix_digits(page: OcrPage) -> tuple[OcrPage, dict[str, int]]:
    """The page with its digit groups' one-stroke glyphs read as ``1``, and the step to record (words changed)."""
    changed = {id(w): fixed for w in page.words if (fixed := fix_word(w.text)) != w.text}
    if not changed:
        return page, {}
    words = [w.model_copy(update={"text": changed[id(w)]}) if id(w) in changed else w for w in page.words]
    return page.model_copy(update={"words": words}), {"digits_fixed": len(changed)}
