"""Search query parsing: the user's text becomes folded terms and phrases, exact forms and số/ký hiệu keys.

- ``"quoted text"`` is a phrase (an unbalanced quote is ignored);
- a word with digits and ``-``/``/``/``.`` is a number/symbol (``15-NQ/TU``, ``15-NQ``, ``123/QĐ-UBND``) and is
  searched as a phrase of its parts, so it matches ``Số 15-NQ/TU`` exactly in sequence;
- every other word is a term. Everything is folded with ``schemas.text.fold`` (the index holds folded text too).
- ``exact``: the ``schemas.text.canonical_tones`` form of every query word written with diacritics, so a backend
  can rank documents holding the user's exact words (``hòa``, not ``hoa``/``hóa``) first. Unaccented words have
  none: a user typing without diacritics means any of them.
- ``codes``: số/ký hiệu keys (``code_key``) the query may be looking up: ``15-NQ/TU``, ``Số 15-NQ/TU``,
  ``NQ/TU 15``, ``15 nq tu`` all give ``"15 nq tu"``; ``15-NQ`` gives ``"15 nq"`` (a prefix of the full key).
Control characters are dropped and the query is capped, so hostile input never reaches an engine raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemas.text import exact_tokens, nfc, tokens

MAX_QUERY_CHARS = 500
MAX_ITEMS = 32
MAX_CODE_TOKENS = 6
_QUOTED = re.compile(r'"([^"]*)"')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUMBER_WORDS = {"so", "ky", "hieu"}  # "Số 15-NQ/TU", "số ký hiệu 15-NQ/TU"
_NUMBER_EXACT = {"số", "ký", "kí", "hiêụ"}  # their canonical_tones forms


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    terms: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases

    def all_tokens(self) -> set[str]:
        return set(self.terms) | {t for p in self.phrases for t in p}


def code_key(number: object, notation: object) -> str | None:
    """The folded key of a document's số/ký hiệu: ``code_key("15", "NQ/TU") == "15 nq tu"`` (number first, then
    the notation's parts). ``None`` without a number or a notation."""
    if not number or not notation:
        return None
    parts = tokens(f"{number} {notation}")
    if parts and parts[0].isdigit():
        parts[0] = parts[0].lstrip("0") or "0"
    return " ".join(parts) if parts else None


def _code_of(toks: list[str]) -> str | None:
    """A code key when ``toks`` is one number and notation parts (``15 nq tu`` or ``nq tu 15``)."""
    while toks and toks[0] in _NUMBER_WORDS:
        toks = toks[1:]
    if not 2 <= len(toks) <= MAX_CODE_TOKENS:
        return None
    if toks[0].isdigit() and not any(t.isdigit() for t in toks[1:]):
        number, notation = toks[0], toks[1:]
    elif toks[-1].isdigit() and not any(t.isdigit() for t in toks[:-1]):
        number, notation = toks[-1], toks[:-1]
    else:
        return None
    if not all(t.isalpha() and t.isascii() for t in notation):
        return None
    return " ".join([number.lstrip("0") or "0", *notation])


def _is_symbol(word: str) -> bool:
    return bool(re.search(r"\d", word)) and bool(re.search(r"[-/.]", word)) and len(tokens(word)) > 1


def _words(text: str) -> list[str]:
    """``tokens`` with a letter or digit: ``_`` alone is a word character to Python, a separator to engines."""
    return [t for t in tokens(text) if t.strip("_")]


def parse_query(text: str) -> ParsedQuery:
    raw = nfc(_CONTROL.sub(" ", text or ""))[:MAX_QUERY_CHARS]
    phrases: list[list[str]] = []
    codes: list[str] = []
    for quoted in _QUOTED.findall(raw):
        toks = _words(quoted)
        if toks:
            phrases.append(toks)
    rest = _QUOTED.sub(" ", raw).replace('"', " ")
    terms: list[str] = []
    for word in rest.split():
        if _is_symbol(word):
            phrases.append(_words(word))
            codes.append(_code_of(_words(word)) or "")
        else:
            terms.extend(t for t in _words(word) if t not in terms)
    whole = _code_of(tokens(raw.replace('"', " ")))
    if whole:
        codes.append(whole)
    lookup = bool(whole) and whole in codes[:-1]  # the query is "Số 15-NQ/TU": "số" need not be in the text
    if lookup:
        terms = [t for t in terms if t not in _NUMBER_WORDS]
    exact = [t for t in exact_tokens(raw) if not (lookup and t in _NUMBER_EXACT)]
    return ParsedQuery(raw=raw, terms=terms[:MAX_ITEMS], phrases=phrases[:MAX_ITEMS], exact=exact[:MAX_ITEMS],
                       codes=[c for c in dict.fromkeys(codes) if c][:MAX_ITEMS])
