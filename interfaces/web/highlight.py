"""Marking matched words in snippets and page text (rendered as ``<mark>`` by the templates, always escaped)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.query import parse_query
from schemas.text import nfc, token_spans, tokens

Segment = tuple[str, bool]  # (text, marked)


def segments(text: str, spans: Sequence[Sequence[int]]) -> list[Segment]:
    """``text`` cut at the [start, end) ``spans`` (sorted, clipped, overlaps merged)."""
    out: list[Segment] = []
    last = 0
    for start, end in sorted((max(0, int(s)), min(len(text), int(e))) for s, e in spans):
        start = max(start, last)
        if end <= start:
            continue
        if start > last:
            out.append((text[last:start], False))
        out.append((text[start:end], True))
        last = end
    if last < len(text):
        out.append((text[last:], False))
    return out


def query_words(query: str) -> set[str]:
    """The folded words a query looks for (phrases and numbers included)."""
    return parse_query(query).all_tokens() or set(tokens(query))


def mark_words(text: str, query: str) -> list[Segment]:
    """``text`` (NFC) with every word the query looks for marked, whatever its diacritics."""
    text = nfc(text)
    wanted = query_words(query) if query.strip() else set()
    if not wanted:
        return [(text, False)] if text else []
    return segments(text, [(s, e) for word, s, e in token_spans(text) if word in wanted])


def has_match(text: str, query: str) -> bool:
    wanted = query_words(query) if query.strip() else set()
    return any(word in wanted for word, _, _ in token_spans(text))
