"""Snippets: the window of a hit's text with the query's words, and their highlights (pure Python: its cost per hit
stays bounded whatever the document's length); and the hits of a result page, read with their snippets."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache

from schemas.document import SearchHit
from schemas.metadata import CONTRACT_KEYS
from schemas.query import ParsedQuery
from schemas.text import fold_fast, nfc, outside_fold_table, spelling_pattern
from storage.search_sqlite.schema import SNIPPET_PREFIX
from storage.search_sqlite.tokens import _ASCII_WORD

SNIPPET_CHARS = 200
SNIPPET_SCANS = (1000, 4000)  # characters searched first for a snippet window holding every query token


def make_snippet(text: str, wanted: set[str], width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The window of ``text`` with the most distinct query tokens, and highlight offsets within it. The text is
    searched from its start in growing parts (``SNIPPET_SCANS``): once a window holds every token, the rest is
    not read; past the last part, the rest is only read when the start holds no token at all (the Python cost of
    a hit stays bounded, whatever the length of the document)."""
    text = nfc(text)
    snippet = _snippet(text, len(text), wanted, width)
    assert snippet is not None  # the whole text
    return snippet


def _snippet(text: str, length: int, wanted: set[str], width: int = SNIPPET_CHARS, folded: str | None = None
             ) -> tuple[str, list[tuple[int, int]]] | None:
    """``make_snippet`` of an NFC text of ``length`` characters given its start ``text`` (and the same start
    folded, if known: the words are found there), or ``None`` when that start is not enough to tell."""
    words = {w for w in wanted if w}
    spans_in = _token_spans if folded is None else _folded_spans(folded, words)
    spans: list[tuple[str, int, int]] = []
    best_start, best_score, done = 0, 0, 0
    for n, scan in enumerate((*SNIPPET_SCANS, length)):
        if scan >= len(text) and len(text) < length:
            return None
        cut = length if scan >= length else max(text.rfind(" ", done, scan), done)  # on a space
        spans += [(w, s + done, e + done) for w, s, e in spans_in(text[done:cut], words, done)]
        done = cut
        best_start, best_score = _best_window(spans, width)
        if best_score == len(words) or done == length or (n == len(SNIPPET_SCANS) - 1 and best_score):
            break  # every token in one window, or the start of a long text has some: good enough
    if best_score == 0:
        start = text[:width]
        return (" ".join(start.split()), []) if len(start) == width or len(text) == length else None
    return _window_at(text, length, best_start, words, spans_in, width)


SpansIn = Callable[[str, set[str], int], list[tuple[str, int, int]]]


def _window_at(text: str, length: int, at: int, words: set[str], spans_in: SpansIn, width: int = SNIPPET_CHARS
               ) -> tuple[str, list[tuple[int, int]]] | None:
    """The snippet window of the text (its start ``text``, ``length`` in all) for a match at ``at``, with the
    highlights ``spans_in`` finds in it; ``None`` when the window reaches past the start given."""
    lo = max(0, at - width // 4)
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    hi = min(length, lo + width)
    while hi < length and hi < len(text) and not text[hi].isspace():
        hi += 1
    if hi >= len(text) and len(text) < length:  # the window reaches past the start given
        return None
    window = text[lo:hi].replace("\n", " ").replace("\t", " ")  # starts and ends at a space or the text's end
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < length else ""
    marks = [(s + len(prefix), e + len(prefix)) for _, s, e in spans_in(window, words, lo)]
    return prefix + window + suffix, marks


def _phrase_snippet(text: str, length: int, folded: str, phrase: re.Pattern[str], words: set[str]
                    ) -> tuple[str, list[tuple[int, int]]] | None:
    """For a query that is one phrase: the window at the phrase's first place in the text's start ``text``
    (``folded``: the same start folded), or ``None`` if the phrase is not there. One search instead of every
    place of every word (a phrase's words are often common: their places are many)."""
    found = phrase.search(folded)
    return _window_at(text, length, found.start(), words, _folded_spans(folded, words)) if found else None


def _phrase_pattern(query: ParsedQuery) -> re.Pattern[str] | None:
    """The folded phrase of a query made of one phrase of ASCII words (``"giá trị đề nghị"``), as a pattern of
    whole words apart by anything but letters and digits; ``None`` for any other query."""
    if len(query.phrases) != 1 or query.terms or not all(_ASCII_WORD.fullmatch(w) for w in query.phrases[0]):
        return None
    return _phrase_regex(tuple(query.phrases[0]))


@lru_cache(maxsize=1024)
def _phrase_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, words)) + r"(?![^\W_])")


def _best_window(spans: list[tuple[str, int, int]], width: int) -> tuple[int, int]:
    """(start, distinct tokens) of the window [start, start + width] from a match that holds the most distinct
    tokens (the first such): two pointers over the spans."""
    best_start, best_score = 0, 0
    seen: dict[str, int] = {}
    right = 0
    for left, (_, start, _) in enumerate(spans):
        while right < len(spans) and spans[right][2] <= start + width:
            seen[spans[right][0]] = seen.get(spans[right][0], 0) + 1
            right += 1
        if len(seen) > best_score:
            best_start, best_score = start, len(seen)
        if left < right:
            tok = spans[left][0]
            seen[tok] -= 1
            if not seen[tok]:
                del seen[tok]
    return best_start, best_score


def _folded_spans(folded: str, words: set[str]) -> SpansIn:
    """``_token_spans`` of a part of a text given the text's start folded (at offset ``at``): the folded words in
    the folded part (the same words, ``_token_spans`` shows)."""
    pattern = _plain_regex(tuple(sorted(words)))

    def spans(part: str, _: set[str], at: int) -> list[tuple[str, int, int]]:
        folded_part = folded[at:at + len(part)]
        return [(m.group(0), m.start(), m.end()) for m in pattern.finditer(folded_part)
                if m.start() == 0 or not _is_word_char(folded_part[m.start() - 1])]
    return spans


def _token_spans(text: str, wanted: set[str], _: int = 0) -> list[tuple[str, int, int]]:
    """(folded token, start, end) of the whole words of ``text`` (NFC) that fold to a word of ``wanted``: found
    by their spellings in ``text``, or, for a word not looked for often yet (its spellings' pattern costs
    milliseconds to compile), in the folded text (``fold_fast`` keeps lengths, so the offsets are the same)."""
    words = sorted(w for w in wanted if w)
    patterns = [_spelling_regex(w) for w in words]
    if not words:
        return []
    # No character outside fold_fast's table folds to an ASCII letter or digit, so ASCII words (every folded
    # Vietnamese word) are found in any text by their spellings; other words need the text folded. Folding
    # keeps a character a word character or not (\w), so both find the same whole words.
    if any(p is None for p in patterns) or (not all(w.isascii() for w in words) and outside_fold_table(text)):
        folded = fold_fast(text)
        return [(m.group(0), m.start(), m.end()) for m in _plain_regex(tuple(words)).finditer(folded)
                if m.start() == 0 or not _is_word_char(folded[m.start() - 1])]
    spans = [(word, m.start(), m.end()) for word, pattern in zip(words, patterns, strict=True) if pattern
             for m in pattern.finditer(text) if m.start() == 0 or not _is_word_char(text[m.start() - 1])]
    return sorted(spans, key=lambda span: span[1])  # whole words: two spans never overlap


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


SPELLINGS_AFTER = 40  # a word's spellings are compiled into a pattern once looked for this often (in hits' texts)
_SPELLINGS: dict[str, re.Pattern[str] | None] = {}
_LOOKED_FOR: dict[str, int] = {}


def _spelling_regex(word: str) -> re.Pattern[str] | None:
    """Every spelling of the folded ``word`` in NFC text, as a whole word's end (its start is checked apart);
    ``None`` until the word has been looked for ``SPELLINGS_AFTER`` times, or if it has characters outside
    ``fold_fast``'s table."""
    if word in _SPELLINGS:
        return _SPELLINGS[word]
    seen = _LOOKED_FOR.get(word, 0) + 1
    if len(_LOOKED_FOR) > 50_000:
        _LOOKED_FOR.clear()
    _LOOKED_FOR[word] = seen
    if seen < SPELLINGS_AFTER:
        return None
    pattern = spelling_pattern(word)
    if len(_SPELLINGS) > 8192:
        _SPELLINGS.clear()
    _SPELLINGS[word] = compiled = re.compile(pattern + r"(?!\w)") if pattern else None
    return compiled


@lru_cache(maxsize=1024)
def _plain_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    """Folded ``words`` in folded text, as a whole word's end (its start is checked apart)."""
    return re.compile("(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")(?!\w)")



def _hit(row: Sequence[object], snippet: str, marks: list[tuple[int, int]], score: float) -> SearchHit:
    doc_id, source, metadata = row[:3]
    md = json.loads(str(metadata))
    contract = {k: md.get(k) for k in CONTRACT_KEYS} | {k: v for k, v in md.items() if k not in CONTRACT_KEYS}
    return SearchHit.model_construct(id=str(doc_id), source=str(source), score=round(score, 4), snippet=snippet,
                                     highlights=marks, metadata=contract)  # our own values: no validation


def _fetch_hits(conn: sqlite3.Connection, ranked: list[tuple[int, float]], wanted: set[str],
                phrase: re.Pattern[str] | None = None) -> list[SearchHit]:
    """The hits of ``ranked`` (docid, score), with their snippets (at the first place of ``phrase`` if given and
    found, else the window with the most distinct ``wanted`` words)."""
    if not ranked:
        return []
    marks = ",".join("?" * len(ranked))
    found = conn.execute(
        "SELECT json_group_array(json_array(d.docid, d.id, d.source, t.metadata, "
        f"substr(t.text, 1, {SNIPPET_PREFIX}), t.folded, length(t.text))) FROM search_docs d "
        f"JOIN search_text t ON t.docid = d.docid WHERE d.docid IN ({marks})", [r[0] for r in ranked]
    ).fetchone()[0]
    by_docid = {int(r[0]): r[1:] for r in json.loads(found)}
    words = {w for w in wanted if w}
    snippets = {docid: (_phrase_snippet(str(start), int(length), str(folded), phrase, words) if phrase else None)
                or (None if phrase else _snippet(str(start), int(length), wanted, folded=str(folded)))  # NFC text
                for docid, (_, _, _, start, folded, length) in by_docid.items()}
    missing = [docid for docid, snippet in snippets.items() if snippet is None]  # the start was not enough
    if missing:  # then the part every scan but the last reads, and the whole text if even that is not
        read = "text" if phrase else f"substr(text, 1, {SNIPPET_SCANS[-1] + 2 * SNIPPET_CHARS})"  # a phrase: all
        texts = conn.execute(
            f"SELECT json_group_array(json_array(docid, {read}, length(text))) FROM search_text "
            f"WHERE docid IN ({','.join('?' * len(missing))})", missing
        ).fetchone()[0]
        for docid, start, length in json.loads(texts):
            longer = phrase and _phrase_snippet(str(start), int(length), fold_fast(str(start), is_nfc=True), phrase,
                                                words)
            snippets[int(docid)] = longer or _snippet(str(start), int(length), wanted) or make_snippet(
                str(conn.execute("SELECT text FROM search_text WHERE docid = ?", (docid,)).fetchone()[0]), wanted)
    return [_hit(by_docid[docid], *snippets[docid] or ("", []), score)
            for docid, score in ranked if docid in by_docid]


