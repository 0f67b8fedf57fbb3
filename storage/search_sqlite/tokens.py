"""What the full-text tables hold for a document: its folded columns, exact words and word-pair tokens
(``search_pairs``), and FTS5's own tokenizer, asked for what Python cannot tell."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from itertools import repeat

from schemas.text import exact_tokens, fold_fast, nfc
from storage.search_sqlite.schema import TOKENIZE

TITLE_FIELDS = ("type_name", "subject", "organ_name", "signer")
HEAD_FIELDS = ("type_name", "subject", "signer")  # not the issuing body: most documents of an archive share it


def _title_text(md: dict[str, object], fields: Sequence[str] = TITLE_FIELDS) -> str:
    return " ".join(str(md[k]) for k in fields if md.get(k))


def _code_text(md: dict[str, object]) -> str:
    number, notation = md.get("code_number"), md.get("code_notation")
    return f"{number or ''}-{notation or ''}" if (number or notation) else ""


def _fts_values(md: dict[str, object], text: str
                ) -> tuple[tuple[str, str, str, str], tuple[str, str, str], str]:
    """The ``search_fts``, ``search_head`` and ``search_pairs`` columns of a document: a pure function of its
    metadata and (NFC) text (a contentless FTS row is deleted by giving these values again)."""
    title, head = nfc(_title_text(md)), nfc(_title_text(md, HEAD_FIELDS))
    code = fold_fast(_code_text(md))
    folded_title, body = fold_fast(title, is_nfc=True), fold_fast(text, is_nfc=True)
    exact = " ".join(exact_tokens(f"{title}\n{text}", is_nfc=True))
    return ((code, folded_title, body, exact), (code, fold_fast(head, is_nfc=True),
                                                " ".join(exact_tokens(head, is_nfc=True))),
            "\n".join(map(_pair_text, (code, folded_title, body))))


_ASCII_WORD = re.compile(r"[a-z0-9]+")  # a folded word whose pairs search_pairs holds
_RUN = re.compile(r"[A-Za-z0-9]+")
_NOT_WORD = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})
_LENGTHS = {n: f"{n:02d}" for n in range(1, 100)}  # a pair token starts with its first word's length
DEAD_PAIR = "00"  # the token of a word with no pair (not ASCII letters and digits, or 100 characters or more)


def pair_token(first: str, second: str) -> str:
    """The ``search_pairs`` token of two folded words (ASCII letters and digits) that follow each other: the
    first word's length in two digits, then both words (``cong``, ``tac`` -> ``04congtac``): one FTS5 token, and
    two pairs never share one. The last word of a column has ``first`` alone (no pair: no query asks for it)."""
    return _LENGTHS[len(first)] + first + second


def _pair_text(folded: str) -> str:
    """One ``search_pairs`` token for each FTS5 token of ``folded`` (a folded column), in order: the pair it
    makes with the next token, or ``DEAD_PAIR``. So the pairs of a phrase follow each other in ``search_pairs``
    exactly where its words do in ``search_fts``."""
    words, plain = _fts5_words(folded)
    if not words:
        return ""
    lengths = list(map(_LENGTHS.get, map(len, words), repeat("")))
    if plain and all(lengths):  # the usual case: ASCII letters and digits, shorter than 100 characters
        parts = [" "] * (4 * len(words))  # length, word, next word, space, ...
        parts[0::4] = lengths
        parts[1::4] = words
        parts[2::4] = [*words[1:], ""]
        return "".join(parts)
    pairs = [DEAD_PAIR] * len(words)
    for n, word in enumerate(words):
        if lengths[n] and _ASCII_WORD.fullmatch(word):
            following = words[n + 1] if n + 1 < len(words) else ""
            pairs[n] = pair_token(word, following if _ASCII_WORD.fullmatch(following) else "")
    return " ".join(pairs)


_tokenizer_lock = threading.Lock()
_tokenizer: list[sqlite3.Connection] = []
_SEPARATORS: set[str] = set()  # characters other than ASCII that FTS5 reads as separators (asked once each)
_NOT_SEPARATORS: set[str] = set()  # the others: token characters (diacritics in a token too)


def _fts5_words(folded: str) -> tuple[list[str], bool]:
    """FTS5's tokens of ``folded``, in order, and whether they are all runs of ASCII letters and digits (then
    lower case: folded). Runs are FTS5's tokens when every other character is a separator to FTS5: always in
    ASCII; otherwise the characters are looked up (FTS5's own Unicode table, asked once per character), and a
    text with token characters other than ASCII is tokenized by FTS5 itself."""
    if folded.isascii():  # the usual case: folded Vietnamese
        return folded.translate(_NOT_WORD).split(), True
    others = {ch for ch in set(folded) if not ch.isascii()}
    if not others <= _SEPARATORS:
        with _tokenizer_lock:
            for ch in others - _SEPARATORS - _NOT_SEPARATORS:
                (_SEPARATORS if _tokenize(f"a{ch}b") == ["a", "b"] else _NOT_SEPARATORS).add(ch)
        if not others <= _SEPARATORS:
            with _tokenizer_lock:
                return _tokenize(folded), False
    return _RUN.findall(folded), True


def _tokenize(text: str) -> list[str]:
    """FTS5's tokens of ``text`` (call with ``_tokenizer_lock`` held)."""
    if not _tokenizer:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{TOKENIZE}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        _tokenizer.append(conn)
    conn = _tokenizer[0]
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    words = [str(r[0]) for r in conn.execute("SELECT term FROM v ORDER BY offset")]
    conn.execute("DELETE FROM t")
    return words

