"""Search query parsing: the user's text becomes folded terms and phrases.

- ``"quoted text"`` is a phrase (an unbalanced quote is ignored);
- a word with digits and ``-``/``/``/``.`` is a number/symbol (``15-NQ/TU``, ``15-NQ``, ``123/QĐ-UBND``) and is
  searched as a phrase of its parts, so it matches ``Số 15-NQ/TU`` exactly in sequence;
- every other word is a term. Everything is folded with ``schemas.text.fold`` (the index holds folded text too).
Control characters are dropped and the query is capped, so hostile input never reaches an engine raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemas.text import nfc, tokens

MAX_QUERY_CHARS = 500
MAX_ITEMS = 32
_QUOTED = re.compile(r'"([^"]*)"')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    terms: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases

    def all_tokens(self) -> set[str]:
        return set(self.terms) | {t for p in self.phrases for t in p}


def _is_symbol(word: str) -> bool:
    return bool(re.search(r"\d", word)) and bool(re.search(r"[-/.]", word)) and len(tokens(word)) > 1


def parse_query(text: str) -> ParsedQuery:
    raw = nfc(_CONTROL.sub(" ", text or ""))[:MAX_QUERY_CHARS]
    phrases: list[list[str]] = []
    for quoted in _QUOTED.findall(raw):
        toks = tokens(quoted)
        if toks:
            phrases.append(toks)
    rest = _QUOTED.sub(" ", raw).replace('"', " ")
    terms: list[str] = []
    for word in rest.split():
        if _is_symbol(word):
            phrases.append(tokens(word))
        else:
            terms.extend(t for t in tokens(word) if t not in terms)
    return ParsedQuery(raw=raw, terms=terms[:MAX_ITEMS], phrases=phrases[:MAX_ITEMS])
