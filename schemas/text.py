"""Vietnamese text normalisation and folding: the single source of truth for search.

- ``nfc`` / ``clean_ocr_text``: what is stored as text (NFC, Icelandic Eth fixed to Đ/đ). OCR text is never
  altered beyond this.
- ``fold``: what search compares. Lower case, đ→d, every combining mark removed (tones and vowel marks), so
  ``hòa``/``hoà``, ``Thành ủy``/``THÀNH UỶ`` and ``thanh uy`` all fold to the same string. Folding maps each NFC
  character to exactly one character, so offsets in folded text are offsets in the NFC original (used to
  highlight snippets with their original diacritics).
- ``tokens``: folded word tokens (letters and digits), the unit of the embedded index and query parser.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_ETH_FIX = str.maketrans({"\u00d0": "\u0110", "\u00f0": "\u0111"})
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC."""
    return unicodedata.normalize("NFC", text)


def clean_ocr_text(text: str) -> str:
    """NFC plus the Eth fix (tesseract writes U+00D0 'Ð' where the page has 'Đ')."""
    return nfc(text).translate(_ETH_FIX)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    low = ch.lower()
    if len(low) != 1:
        low = ch
    if low == "đ":
        return "d"
    base = "".join(c for c in unicodedata.normalize("NFD", low) if not unicodedata.combining(c))
    return base if len(base) == 1 else low


def fold(text: str) -> str:
    """Fold Vietnamese text for accent-insensitive matching; same length as ``nfc(text)``."""
    return "".join(_fold_char(ch) for ch in clean_ocr_text(text))


def tokens(text: str) -> list[str]:
    """Folded word tokens of ``text``."""
    return _TOKEN_RE.findall(fold(text))


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Folded tokens with their [start, end) offsets in ``nfc(text)``."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(fold(text))]


_NATURAL_RE = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, object], ...]:
    """Sort key that puts ``p2`` before ``p10`` (numbers compared as numbers, text folded)."""
    parts = _NATURAL_RE.split(name)
    return tuple((0, int(p)) if p.isdigit() else (1, fold(p)) for p in parts if p != "")
