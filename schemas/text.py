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


# Characters whose fold ``fold_fast`` takes from a table: Latin (with every Vietnamese letter), Latin Extended
# Additional and general punctuation. A text with any other character is folded by ``fold`` itself.
_TABLE_RANGES = ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x2000, 0x206F))
_FOLD_TABLE = {c: _fold_char(chr(c).translate(_ETH_FIX)) for lo, hi in _TABLE_RANGES for c in range(lo, hi + 1)}
_OUTSIDE_TABLE = re.compile("[^" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _TABLE_RANGES) + "]")


def fold_fast(text: str, *, is_nfc: bool = False) -> str:
    """``fold(text)``, character for character, without ``fold``'s per-character calls: for long texts (indexing,
    snippets). ``is_nfc``: the caller knows ``text`` is NFC (not checked again)."""
    if not is_nfc:
        text = nfc(text)
    if text.isascii():
        return text.lower()
    if _OUTSIDE_TABLE.search(text):
        return fold(text)
    if "\u0130" not in text:  # İ: the one character of the table whose lower case is two characters
        # Lower case, đ/ð to d, then every mark dropped with NFD: each character of the table is one base letter
        # plus marks. A base letter that is not ASCII (ø, ß, “ ...) is dropped too, and the length tells.
        low = text.lower().replace("\u0111", "d").replace("\u00f0", "d")
        out = unicodedata.normalize("NFD", low).encode("ascii", "ignore").decode("ascii")
        if len(out) == len(text):
            return out
    return text.translate(_FOLD_TABLE)  # the table folds Ð/ð like clean_ocr_text + fold: to d


def _spellings() -> dict[str, set[str]]:
    """Folded character -> the characters of the table that fold to it."""
    out: dict[str, set[str]] = {}
    for code, folded in _FOLD_TABLE.items():
        out.setdefault(folded, set()).add(chr(code))
    return out


_SPELLINGS = _spellings()


def spelling_pattern(folded_word: str) -> str | None:
    """A regular expression matching every NFC spelling of ``folded_word`` (``cong`` matches ``công``, ``CÔNG``,
    ``cống`` ...), for finding folded words in a text without folding it; ``None`` if a character of the word
    has spellings outside ``fold_fast``'s table. A text with characters outside it: use ``fold_fast``."""
    parts = []
    for ch in folded_word:
        spellings = _SPELLINGS.get(ch)
        if not spellings or ch not in spellings:
            return None
        parts.append("[" + "".join(re.escape(c) for c in sorted(spellings)) + "]" if len(spellings) > 1
                     else re.escape(ch))
    return "".join(parts)


def outside_fold_table(text: str) -> bool:
    """True if ``text`` has a character ``spelling_pattern`` does not know (see ``fold_fast``)."""
    return _OUTSIDE_TABLE.search(text) is not None


def _clean(text: str, *, is_nfc: bool = False) -> str:
    """``clean_ocr_text`` without its per-character table lookups when there is no Eth to fix."""
    if not is_nfc:
        text = nfc(text)
    return text.translate(_ETH_FIX) if "\u00d0" in text or "\u00f0" in text else text


# Tone marks (dấu thanh) as combining characters after NFD: huyền, sắc, ngã, hỏi, nặng. Vowel marks (breve,
# circumflex, horn) are part of the letter and stay where they are.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=65536)
def _canonical_word(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(tones) != 1:
        return word  # no tone, or OCR noise with several: nothing to move
    bare = decomposed.replace(tones[0], "")
    last = max((i for i, c in enumerate(bare) if c in _VOWELS), default=-1)
    if last < 0:
        return word
    end = last + 1
    while end < len(bare) and unicodedata.combining(bare[end]):
        end += 1  # after the vowel's own marks (â, ơ, ư ...)
    return unicodedata.normalize("NFC", bare[:end] + tones[0] + bare[end:])


def canonical_tones(text: str) -> str:
    """Lower-case NFC text with each word's tone mark on one canonical vowel (the last vowel of the word), so
    the two tone-placement conventions give the same string: ``hòa``/``hoà``, ``thủy``/``thuỷ``, ``Hóa``/``HOÁ``.
    Unlike ``fold`` it keeps every diacritic (``ma``, ``má``, ``mà`` stay distinct): the "exact" form of search.
    The canonical placement is a key, not a spelling (``của`` becomes ``cuả``)."""
    return _TOKEN_RE.sub(lambda m: _canonical_word(m.group(0)), _clean(text).lower())


@lru_cache(maxsize=65536)
def _exact_words(piece: str) -> frozenset[str]:
    return frozenset(_canonical_word(w) for w in _TOKEN_RE.findall(piece) if not w.isascii())


def exact_tokens(text: str, *, is_nfc: bool = False) -> list[str]:
    """The distinct ``canonical_tones`` words of ``text`` that carry a diacritic (their exact form differs from
    the folded one), sorted. ``is_nfc``: the caller knows ``text`` is NFC."""
    pieces = set(_clean(text, is_nfc=is_nfc).lower().split())  # split first: \w+ over a long text is slow
    return sorted(frozenset().union(*(_exact_words(p) for p in pieces if not p.isascii())))
