"""Embedded search index on SQLite FTS5 (``SqliteSearchIndex``, the ``storage.search_index.SearchIndex`` port).

Tables, in the catalog's database file but self-contained (a hit never needs the catalog's ``documents``):

- ``search_docs``: one narrow row per document (facet counts and filters scan it): id, source, batch, file_code,
  status, date, year, secrecy level, facet values and the folded số/ký hiệu key (``schemas.query.code_key``).
  Its key ``docid`` is ``n << 2 | secrecy_level`` and is the rowid of the document's FTS rows, so the caller's
  clearance is checked on the rowid itself, inside every query (hits, totals and facet counts never see a
  document above it), without a lookup per match.
- ``search_text``: the metadata JSON and the NFC text (snippets are cut from it), and the start of the folded
  text (``SNIPPET_PREFIX`` characters: the query's words are found there without folding it again).
- ``search_fts``: contentless FTS5 (``content=''``: the text is stored once, in ``search_text``), columns
  ``code`` (số/ký hiệu), ``title`` (type, subject, issuing body, signer) and ``body`` (page text), all folded
  with ``schemas.text.fold`` (đ→d, every mark removed), and ``exact``: the document's distinct words written
  with diacritics, in ``schemas.text.canonical_tones`` form (``hòa``/``hoà`` one token; ``hoa``, ``hóa`` others).
- ``search_head``: the same for the heading alone (``code``, and type, subject and signer: not the issuing body,
  which most documents of an archive share): small, so it ranks cheaply.
- ``search_pairs``: contentless FTS5 over the document's word pairs (``_pair_text``): a token for every two
  folded words that follow each other in ``code``, ``title`` or ``body``, at the first word's position, so a
  phrase of ASCII words (every folded Vietnamese phrase) is a phrase of pair tokens, found from the pairs'
  short doclists instead of the positions of every document holding all its words. Pairs are written in
  batches (``PAIRS_BATCH`` documents, one FTS5 segment): a document's pairs wait in ``search_pairs_pending``
  until then, and a phrase is matched on the words (``search_fts``) for the pending documents, the newest.

Matching: every item of the query (word or phrase) in any folded column (AND, no OR fallback: the contract's
semantics), so an unaccented query finds everything its accented twin finds. Filters are conditions on
``search_docs`` joined to the matches; ``date_desc``/``date_asc`` sort the matches on the date index. Ranking
(relevance):

1. documents whose số/ký hiệu the query looks up (``ParsedQuery.codes``: an indexed lookup on ``code_key``:
   ``15-NQ/TU``, ``15-NQ``, ``NQ/TU 15``, ``Số 15-NQ/TU``), above documents that only cite it;
2. then bm25 (``WEIGHTS``: code 10, title 4, body 1, exact 8), with one phrase per column for each item (bm25
   saturates each column apart, like a per-field BM25: naming the words in the heading AND the text beats
   naming them once) and the query's accented words as optional phrases on ``exact`` (an exact word implies
   its folded one: the same documents match, those holding the user's exact words score higher).

FTS5's bm25 reads the whole doclist of every phrase it scores (its idf), so it is only used over items found in
at most ``RANK_DF`` documents (a probe: is there a ``RANK_DF``-th match?); items found in more only filter.
When every item is that common, bm25 cannot rank cheaply (and barely can: its idf is near zero): the documents
whose heading (``search_head``) holds every item with the user's exact diacritics come first, then those whose
heading holds every item, then the other matches, each tier most recently indexed first; and the total is
counted exactly up to ``COUNT_EXACT``, estimated above it (two significant digits) unless facets were asked for
(they count every match); for a caller who may not see every level it is estimated over the documents they see
only (``_visible_share``: classified documents leave gaps in the docid range that would show). A query of
phrases is matched on ``search_pairs`` (see above); a phrase next to a plain word, or with a word FTS5 may split
differently (not ASCII letters and digits), is matched on the words: then a phrase of common words found in few
documents costs a pass over every document holding all its words (FTS5 compares positions row by row).

One writer (a lock; ``BEGIN IMMEDIATE``, WAL), any number of readers: every thread that searches has its own
read connection, and one search runs in one read transaction (its total, hits and facets agree).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from itertools import pairwise, repeat
from pathlib import Path

from schemas.document import SearchHit, SearchResult
from schemas.metadata import CONTRACT_KEYS
from schemas.query import ParsedQuery, code_key, parse_query
from schemas.search import FACET_FIELDS, UNCLASSIFIED, FacetCount, IndexEntry, SearchRequest, secrecy_level
from schemas.text import exact_tokens, fold_fast, nfc, outside_fold_table, spelling_pattern

SNIPPET_CHARS = 200
SNIPPET_SCANS = (1000, 4000)  # characters searched first for a snippet window holding every query token
WEIGHTS = (10.0, 4.0, 1.0, 8.0)  # search_fts: code, title, body, exact
BM25 = "bm25(search_fts, " + ", ".join(map(str, WEIGHTS)) + ")"
LEVEL_BITS = 2  # docid = n << LEVEL_BITS | secrecy level
LEVEL_MASK = (1 << LEVEL_BITS) - 1
MAX_LEVEL = 3
RANK_DF = 2000  # bm25 scores an item only if at most this many visible documents hold it
HEAD_K = 200  # common items: the most documents a heading tier lists before the other matches
COUNT_EXACT = 1000  # every item common: matches counted up to this, estimated above it (like a search engine)
FACET_VALUES = 100  # values per facet, most frequent first
MAX_CODE_TIER = 50  # documents with the số/ký hiệu a query looks up, ranked first
CODE_TIER_BONUS = 1000.0  # added to the score of a document whose số/ký hiệu the query looks up
LAYOUT = "7"  # 7: + search_pairs / search_pairs_pending; 6: search_docs / search_text / search_fts / search_head
# (2: fts + doc_text over the catalog)
PAIRS_BATCH = 500  # pending documents whose pairs are written at once (a phrase scans at most these on the words)
PAIRS_HASH_BYTES = 32 << 20  # FTS5 memory for a batch of pairs: one segment per batch
_BATCH = 256  # rows per executemany
_TOKENIZE = "unicode61 remove_diacritics 0"  # every FTS5 table's tokenizer (search_pairs follows search_fts's)

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_docs (
    docid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    batch TEXT NOT NULL,
    file_code TEXT,
    status TEXT NOT NULL,
    issued_date TEXT,
    year INTEGER,
    level INTEGER NOT NULL,
    type_name TEXT,
    organ_name TEXT,
    classification TEXT NOT NULL,
    code_key TEXT
);
CREATE INDEX IF NOT EXISTS search_docs_code ON search_docs(code_key) WHERE code_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_docs_newest ON search_docs(ifnull(issued_date, '') DESC, id);
CREATE INDEX IF NOT EXISTS search_docs_oldest ON search_docs(ifnull(issued_date, '~'), id);
CREATE TABLE IF NOT EXISTS search_text (
    docid INTEGER PRIMARY KEY, metadata TEXT NOT NULL, text TEXT NOT NULL, folded TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    code, title, body, exact, content = '', tokenize = '{_TOKENIZE}'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_head USING fts5(
    code, title, exact, content = '', tokenize = '{_TOKENIZE}'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_pairs USING fts5(
    pairs, content = '', columnsize = 0, tokenize = '{_TOKENIZE}'
);
CREATE TABLE IF NOT EXISTS search_pairs_pending (docid INTEGER PRIMARY KEY, pairs TEXT NOT NULL);
"""
_FACET_COLUMNS = {"type_name": "type_name", "year": "year", "organ_name": "organ_name",
                  "classification": "classification", "batch": "batch", "file_code": "file_code"}
_SORT_SQL = {
    "date_desc": "ifnull(d.issued_date, '') DESC, d.id",
    "date_asc": "ifnull(d.issued_date, '~'), d.id",
}
_DOC_COLUMNS = "docid, id, source, batch, file_code, status, issued_date, year, level, type_name, organ_name, " \
               "classification, code_key"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


# ----------------------------------------------------------------------------------------------- schema


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the index tables; an index of an older layout is migrated to this one (in one transaction)."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    if _layout(conn) == LAYOUT:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _layout(conn) != LAYOUT:  # another process may have migrated it meanwhile
            _migrate(conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('search_layout', ?)", (LAYOUT,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _layout(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'search_layout'").fetchone()
    return None if row is None else str(row[0])


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _migrate(conn: sqlite3.Connection) -> None:
    """Re-index what an older layout holds into this one: an earlier layout of these tables (everything is in
    ``search_docs`` and ``search_text``), or layouts 1 and 2 (``fts`` + ``doc_text``, metadata in the catalog's
    ``documents``; ``file_code`` is not there: ``sohoa reindex`` restores it from the manifests)."""
    tables = _tables(conn)
    earlier: list[tuple[str, str, str, str, str, str, str | None]] = []
    if "search_docs" in tables and "search_text" in tables:
        held = "d" if "metadata" in {r[1] for r in conn.execute("PRAGMA table_info(search_docs)")} else "t"
        earlier = conn.execute(
            f"SELECT d.id, t.text, d.source, d.batch, d.status, {held}.metadata, d.file_code FROM search_docs d "
            "JOIN search_text t ON t.docid = d.docid ORDER BY d.docid").fetchall()
    for name in ("search_fts", "search_head", "search_pairs", "search_pairs_pending", "search_docs", "search_text"):
        if name in tables:
            conn.execute(f"DROP TABLE {name}")
    for statement in _DDL.split(";"):  # not executescript: it would commit the caller's transaction
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO search_pairs(search_pairs, rank) VALUES ('hashsize', ?)", (PAIRS_HASH_BYTES,))
    write_entries(conn, (_entry_of_row(*row) for row in earlier))
    if "doc_text" in tables and "documents" in tables:
        rows = conn.execute("SELECT t.id, t.text, d.source, d.batch, d.status, d.metadata "
                            "FROM doc_text t JOIN documents d ON d.id = t.id ORDER BY t.rowid")
        write_entries(conn, (_entry_of_row(*row) for row in rows))  # streamed: an archive may be large
    for name in ("fts", "doc_text"):
        if name in tables:
            conn.execute(f"DROP TABLE {name}")


def _entry_of_row(doc_id: str, text: str, source: str, batch: str, status: str, metadata: str,
                  file_code: str | None = None) -> IndexEntry:
    md = json.loads(metadata)
    md.pop("evidence", None)
    issued = md.get("issued_date") if isinstance(md.get("issued_date"), str) else None
    year = int(issued[:4]) if issued and issued[:4].isdigit() else None
    return IndexEntry(id=doc_id, source=source, batch=batch, file_code=file_code, status=status, metadata=md,
                      text=text, issued_date=issued, year=year, secrecy_level=secrecy_level(md.get("classification")))


# ----------------------------------------------------------------------------------------------- writes


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
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{_TOKENIZE}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        _tokenizer.append(conn)
    conn = _tokenizer[0]
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    words = [str(r[0]) for r in conn.execute("SELECT term FROM v ORDER BY offset")]
    conn.execute("DELETE FROM t")
    return words


def _text_value(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def _delete_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    for chunk in _chunks(list(ids), _BATCH):
        marks = ",".join("?" * len(chunk))
        old = conn.execute(
            f"SELECT d.docid, t.metadata, t.text FROM search_docs d JOIN search_text t ON t.docid = d.docid "
            f"WHERE d.id IN ({marks})", chunk).fetchall()
        if not old:
            continue
        values = [(docid, *_fts_values(json.loads(md), text)) for docid, md, text in old]
        conn.executemany(
            "INSERT INTO search_fts(search_fts, rowid, code, title, body, exact) VALUES ('delete', ?, ?, ?, ?, ?)",
            [(docid, *main) for docid, main, _, _ in values])
        conn.executemany(
            "INSERT INTO search_head(search_head, rowid, code, title, exact) VALUES ('delete', ?, ?, ?, ?)",
            [(docid, *head) for docid, _, head, _ in values])
        marks = ",".join("?" * len(values))
        pending = {int(r[0]) for r in conn.execute(
            f"SELECT docid FROM search_pairs_pending WHERE docid IN ({marks})", [v[0] for v in values])}
        conn.executemany("DELETE FROM search_pairs_pending WHERE docid = ?", [(d,) for d in pending])
        conn.executemany("INSERT INTO search_pairs(search_pairs, rowid, pairs) VALUES ('delete', ?, ?)",
                         [(docid, pairs) for docid, _, _, pairs in values if docid not in pending])
        conn.executemany("DELETE FROM search_docs WHERE docid = ?", [(r[0],) for r in old])
        conn.executemany("DELETE FROM search_text WHERE docid = ?", [(r[0],) for r in old])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_entries(conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
    """Add or replace the index rows of ``entries`` (call inside the caller's write transaction: the catalog
    writes its row and these in one). Returns the number of documents written."""
    count = 0
    batch: list[IndexEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= _BATCH:
            count += _write_batch(conn, batch)
            batch = []
    if batch:
        count += _write_batch(conn, batch)
    return count


def _flush_pairs(conn: sqlite3.Connection, at_least: int | None = None) -> None:
    """Write the pending documents' pairs to ``search_pairs`` (one FTS5 segment), once ``at_least`` documents
    (``PAIRS_BATCH``) have been added since the first pending one (inside the caller's transaction, or as one of
    its own)."""
    first = conn.execute("SELECT min(docid) FROM search_pairs_pending").fetchone()[0]
    last = conn.execute("SELECT max(docid) FROM search_docs").fetchone()[0]
    span = 0 if first is None else (int(last) >> LEVEL_BITS) - (int(first) >> LEVEL_BITS) + 1
    if not span or span < (PAIRS_BATCH if at_least is None else at_least):
        return
    conn.execute("SAVEPOINT search_pairs_flush")
    try:
        conn.execute("INSERT INTO search_pairs(rowid, pairs) SELECT docid, pairs FROM search_pairs_pending")
        conn.execute("DELETE FROM search_pairs_pending")
        conn.execute("RELEASE search_pairs_flush")
    except BaseException:
        conn.execute("ROLLBACK TO search_pairs_flush")
        conn.execute("RELEASE search_pairs_flush")
        raise


def _write_batch(conn: sqlite3.Connection, entries: list[IndexEntry]) -> int:
    latest = {e.id: e for e in entries}  # the last of two entries with one id wins
    _delete_rows(conn, list(latest))
    top = conn.execute("SELECT max(docid) FROM search_docs").fetchone()[0]
    serial = (int(top) >> LEVEL_BITS) + 1 if top is not None else 1
    docs, texts, fts, head, pairs = [], [], [], [], []
    for e in latest.values():
        level = min(max(e.secrecy_level, 0), MAX_LEVEL)
        docid = serial << LEVEL_BITS | level
        serial += 1
        md = dict(e.metadata)
        md.pop("evidence", None)
        text = nfc(e.text)
        issued = e.issued_date if e.issued_date and _ISO_DATE.match(e.issued_date) else None
        classification = _text_value(md.get("classification")) or UNCLASSIFIED
        docs.append((docid, e.id, e.source, e.batch, e.file_code, e.status, issued, e.year, level,
                     _text_value(md.get("type_name")), _text_value(md.get("organ_name")), classification,
                     code_key(md.get("code_number"), md.get("code_notation"))))
        main_values, head_values, pair_values = _fts_values(md, text)
        texts.append((docid, json.dumps(md, ensure_ascii=False), text, main_values[2][:SNIPPET_PREFIX]))
        fts.append((docid, *main_values))
        head.append((docid, *head_values))
        pairs.append((docid, pair_values))
    conn.executemany(f"INSERT INTO search_docs({_DOC_COLUMNS}) VALUES ({','.join('?' * 13)})", docs)
    conn.executemany("INSERT INTO search_text(docid, metadata, text, folded) VALUES (?, ?, ?, ?)", texts)
    conn.executemany("INSERT INTO search_fts(rowid, code, title, body, exact) VALUES (?, ?, ?, ?, ?)", fts)
    conn.executemany("INSERT INTO search_head(rowid, code, title, exact) VALUES (?, ?, ?, ?)", head)
    conn.executemany("INSERT INTO search_pairs_pending(docid, pairs) VALUES (?, ?)", pairs)
    _flush_pairs(conn)
    return len(docs)


def delete_entries(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Remove the index rows of ``ids`` (inside the caller's write transaction)."""
    _delete_rows(conn, ids)


def clear(conn: sqlite3.Connection) -> None:
    """Remove every index row (inside the caller's write transaction)."""
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('delete-all')")
    conn.execute("INSERT INTO search_head(search_head) VALUES ('delete-all')")
    conn.execute("INSERT INTO search_pairs(search_pairs) VALUES ('delete-all')")
    conn.execute("DELETE FROM search_pairs_pending")
    conn.execute("DELETE FROM search_docs")
    conn.execute("DELETE FROM search_text")


COMPACT_STEP_PAGES = 2000  # FTS5 leaf pages merged per transaction by ``compact`` (tens of milliseconds each)
COMPACT_ALWAYS_UP_TO = 20_000  # documents: below this a merge costs at most a few seconds, done after every run
COMPACT_MIN_SHARE = 0.02  # above it, a run merges when it added this share of the index's documents (a merge
# rewrites the whole index: a run of a few documents into a large archive leaves FTS5's own merging to it)


def worth_compacting(documents: int, added: int) -> bool:
    """Whether a run that added ``added`` of the index's ``documents`` should merge its segments (``compact``)."""
    return added > 0 and (documents <= COMPACT_ALWAYS_UP_TO or added >= COMPACT_MIN_SHARE * documents)
_FTS_TABLES = ("search_fts", "search_head", "search_pairs")


def compact(conn: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> int:
    """Merge each FTS index into one segment in small steps (``COMPACT_STEP_PAGES`` leaf pages, each its own
    transaction taken under ``lock``), so other writers wait at most one step; searches of a merged index read
    one doclist per word instead of one per segment (about 1.3x more searches/s at 100,000 pages). Writes the
    pending pairs first. Call with no transaction open. Returns the number of steps that did work."""
    def step(action: Callable[[], object]) -> bool:
        """``action`` in a transaction of its own; whether it changed anything besides the command's own row."""
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                action()
                worked = conn.total_changes - before > 1  # a merge command itself counts one change
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return worked

    step(lambda: _flush_pairs(conn, at_least=1))
    steps = 0
    for table in _FTS_TABLES:
        sql = f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)"
        worked = step(partial(conn.execute, sql, (-COMPACT_STEP_PAGES,)))  # negative: start merging all into one
        while worked:
            steps += 1
            worked = step(partial(conn.execute, sql, (COMPACT_STEP_PAGES,)))
    return steps


def segment_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Segments of each FTS index (1 once compacted; 0 when empty)."""
    return {table: int(conn.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone()[0])
            for table in _FTS_TABLES}


def optimize(conn: sqlite3.Connection) -> None:
    """Write the pending pairs, and merge each FTS index into one segment (after a rebuild: fewer segments,
    faster queries)."""
    _flush_pairs(conn, at_least=1)
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    conn.execute("INSERT INTO search_head(search_head) VALUES ('optimize')")
    conn.execute("INSERT INTO search_pairs(search_pairs) VALUES ('optimize')")


# ----------------------------------------------------------------------------------------------- snippets


def make_snippet(text: str, wanted: set[str], width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The window of ``text`` with the most distinct query tokens, and highlight offsets within it. The text is
    searched from its start in growing parts (``SNIPPET_SCANS``): once a window holds every token, the rest is
    not read; past the last part, the rest is only read when the start holds no token at all (the Python cost of
    a hit stays bounded, whatever the length of the document)."""
    text = nfc(text)
    snippet = _snippet(text, len(text), wanted, width)
    assert snippet is not None  # the whole text
    return snippet


SNIPPET_PREFIX = 1300  # characters of a hit's text read for its snippet (the whole text when that is not enough)


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


# ----------------------------------------------------------------------------------------------- queries


_FOLDED = "{code title body} : "


def _quoted(words: Sequence[str]) -> str:
    return '"' + " ".join(w.replace('"', "") for w in words) + '"'


class _Item:
    """One thing the query asks for (a term or a phrase). ``match``: it, in any folded column. ``pairs``: a phrase
    of ASCII words as the phrase of its pair tokens on ``search_pairs`` (the same documents), or ``None``.
    ``ranked`` (on ``search_fts``): one phrase per column, plus the exact (accented) forms of a term on
    ``exact``: an exact word implies its folded term, so it matches the same documents as ``match`` and only
    adds to the bm25 score. ``head`` / ``head_exact`` (on ``search_head``): it in the heading / with the user's
    exact diacritics."""

    def __init__(self, words: Sequence[str], exact: Sequence[str]) -> None:
        phrase = _quoted(words)
        # ``exact`` holds only words with diacritics: an ASCII word can only match the folded columns, and FTS5
        # scans faster without a column filter
        self.match = phrase if all(w.isascii() for w in words) else _FOLDED + phrase
        paired = len(words) > 1 and all(_ASCII_WORD.fullmatch(w) and len(w) in _LENGTHS for w in words)
        self.pairs = _quoted([pair_token(a, b) for a, b in pairwise(words)]) if paired else None
        self.words = [_quoted([w]) if w.isascii() else _FOLDED + _quoted([w]) for w in dict.fromkeys(words)]
        exact_alternatives = [f"{{exact}} : {_quoted([e])}" for e in exact]
        self.ranked = "(" + " OR ".join([f"{{{c}}} : {phrase}" for c in ("code", "title", "body")]
                                        + exact_alternatives) + ")"
        self.head = "{code title} : " + phrase
        self.head_exact = "(" + " OR ".join(exact_alternatives) + ")" if exact else self.head
        self.exact = bool(exact)


def _items(query: ParsedQuery) -> list[_Item]:
    exact: dict[str, list[str]] = {}
    for word in query.exact:
        exact.setdefault(fold_fast(word), []).append(word)
    return [_Item([t], exact.get(t, [])) for t in query.terms] + [_Item(p, []) for p in query.phrases]


def _all(items: Sequence[_Item], part: Callable[[_Item], str]) -> str:
    return " AND ".join(part(i) for i in items)


NO_PENDING = 1 << 62  # above every docid


class _Match:
    """The documents holding every item: ``words`` on ``search_fts``; or, when every item is a phrase of ASCII
    words, ``pairs`` on ``search_pairs`` for the documents whose pairs are written (docid below ``pending``)
    and ``words`` for the pending ones (the newest, ``PAIRS_BATCH`` at most: cheap either way)."""

    def __init__(self, items: Sequence[_Item], pending: int | None) -> None:
        self.words = _all(items, lambda i: i.match)
        self.pairs = " AND ".join(i.pairs for i in items if i.pairs) if all(i.pairs for i in items) else None
        self.pending = NO_PENDING if pending is None else pending

    def rowids(self, condition: str = "", args: Sequence[object] = (), newest: int = 0) -> tuple[str, list[object]]:
        """SQL selecting the rowid (``f.rowid``) of every matching document that meets ``condition`` (SQL on
        ``f``, with ``args``: `` AND ...``), and its parameters; only the ``newest`` of the written pairs' ones if
        asked (their newest ``newest`` are among them). The pending documents are read upwards from the first
        (never with ORDER BY rowid DESC: FTS5 would pass the first by and read on to the oldest document while
        no other holds the phrase's words in place)."""
        if self.pairs is None:
            return f"SELECT f.rowid FROM search_fts f WHERE search_fts MATCH ?{condition}", [self.words, *args]
        pairs = f"SELECT f.rowid FROM search_pairs f WHERE search_pairs MATCH ? AND f.rowid < ?{condition}"
        if newest:
            pairs = f"SELECT rowid FROM ({pairs} ORDER BY f.rowid DESC LIMIT {int(newest)})"
        return (f"SELECT f.rowid FROM search_fts f WHERE search_fts MATCH ? AND f.rowid >= ?{condition} "
                f"UNION ALL {pairs}", [self.words, self.pending, *args, self.pairs, self.pending, *args])


def _filter_sql(request: SearchRequest) -> tuple[str, list[object]]:
    """SQL conditions on ``search_docs d`` for the request's filters (empty when none)."""
    f = request.filters
    clauses: list[str] = []
    args: list[object] = []
    for column, values in (("type_name", f.type_name), ("organ_name", f.organ_name),
                           ("classification", f.classification), ("batch", f.batch), ("file_code", f.file_code)):
        wanted = [nfc(v) for v in values]
        if wanted:
            clauses.append(f"d.{column} IN ({','.join('?' * len(wanted))})")
            args += wanted
    for clause, value in (("d.year >= ?", f.year_from), ("d.year <= ?", f.year_to),
                          ("d.issued_date >= ?", f.date_from), ("d.issued_date <= ?", f.date_to)):
        if value is not None:
            clauses.append(clause)
            args.append(value if isinstance(value, int) else value.isoformat())
    return " AND ".join(clauses), args


class _Scope:
    """Which documents a request may return: visible at its clearance and passing its filters. ``source`` is
    the SQL of the rows of an FTS table (alias ``f``) that match a parameter and are in scope."""

    def __init__(self, request: SearchRequest) -> None:
        self.where, self.args = _filter_sql(request)
        clearance = min(max(int(request.clearance), 0), MAX_LEVEL)
        self.visible = "" if clearance >= MAX_LEVEL else f" AND (f.rowid & {LEVEL_MASK}) <= {clearance}"
        self.clearance = clearance

    def source(self, table: str, *, filtered: bool = True, joined: bool = False) -> str:
        join = " JOIN search_docs d ON d.docid = f.rowid" if (joined or (filtered and self.where)) else ""
        extra = f" AND {self.where}" if filtered and self.where else ""
        return f"{table} f{join} WHERE {table} MATCH ?{self.visible}{extra}"

    def params(self, expr: str, *, filtered: bool = True) -> list[object]:
        return [expr, *self.args] if filtered else [expr]

    def matches(self, match: _Match, *, joined: bool = False) -> tuple[str, list[object]]:
        """``source`` for the in-scope documents of ``match`` (alias ``f``, its rowid the docid), and its
        parameters."""
        if match.pairs is None:
            return self.source("search_fts", joined=joined), self.params(match.words)
        if joined:
            rowids, args = match.rowids(self.visible)
            where = f" AND {self.where}" if self.where else ""
            return f"({rowids}) f JOIN search_docs d ON d.docid = f.rowid WHERE 1{where}", [*args, *self.args]
        rowids, args = match.rowids(*self._condition())
        return f"({rowids}) f WHERE 1", args

    def newest(self, match: _Match, limit: int, name: str, *, below: int | None = None) -> tuple[str, list[object]]:
        """A CTE ``name`` (column ``docid``): the ``limit`` newest in-scope documents of ``match`` (with a docid
        below ``below`` if given), newest first, and its parameters."""
        condition, args = self._condition()
        if below is not None:
            condition += " AND f.rowid < ?"
            args.append(below)
        if match.pairs is None:
            return (f"{name} AS MATERIALIZED (SELECT f.rowid AS docid FROM search_fts f WHERE search_fts MATCH ?"
                    f"{condition} ORDER BY f.rowid DESC LIMIT {int(limit)})"), [match.words, *args]
        rowids, args = match.rowids(condition, args, newest=limit)
        return (f"{name}_all AS MATERIALIZED ({rowids}), {name} AS MATERIALIZED "
                f"(SELECT rowid AS docid FROM {name}_all ORDER BY rowid DESC LIMIT {int(limit)})"), args

    def _condition(self) -> tuple[str, list[object]]:
        """The scope as a condition on ``f`` (the filters as a lookup per match), and its parameters."""
        where = f" AND EXISTS (SELECT 1 FROM search_docs d WHERE d.docid = f.rowid AND {self.where})" \
            if self.where else ""
        return self.visible + where, list(self.args) if self.where else []


class Probes:
    """What searches on one read connection learned of the database while no other connection changed it
    (``PRAGMA data_version``): which words are common at a clearance (``_common_items``), and how many documents
    each clearance sees (``_visible_share``)."""

    LIMIT = 50_000  # words remembered, forgotten all at once beyond

    def __init__(self) -> None:
        self.version: tuple[int, int] | None = None
        self.common: dict[tuple[str, int], bool] = {}
        self.visible: dict[int, int] = {}

    def at(self, version: int) -> dict[tuple[str, int], bool]:
        if (version, RANK_DF) != self.version or len(self.common) > self.LIMIT:
            self.version, self.common, self.visible = (version, RANK_DF), {}, {}
        return self.common


def _common_items(conn: sqlite3.Connection, scope: _Scope, items: list[_Item],
                  known: dict[tuple[str, int], bool]) -> list[bool]:
    """For each item: would bm25 over it be costly, i.e. is each of its words in more than ``RANK_DF`` visible
    documents (a probe per word reads at most ``RANK_DF`` doclist entries; a phrase costs what its rarest word
    costs)? The words ``known`` (at this clearance) are not probed again; the others in one statement: every
    round trip to SQLite is a handover of Python's GIL, slow under concurrency."""
    words = [w for w in dict.fromkeys(w for i in items for w in i.words) if (w, scope.clearance) not in known]
    if words:
        probe = f"(SELECT 1 FROM {scope.source('search_fts', filtered=False)} LIMIT 1 OFFSET {RANK_DF})"
        row = conn.execute("SELECT " + ", ".join([probe] * len(words)), words).fetchone()
        known.update(((w, scope.clearance), v is not None) for w, v in zip(words, row, strict=True))
    return [all(known[(w, scope.clearance)] for w in i.words) for i in items]


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


def _result(conn: sqlite3.Connection, request: SearchRequest, total: int, order: list[tuple[int, float]],
            wanted: set[str], facets: dict[str, list[FacetCount]], phrase: re.Pattern[str] | None = None
            ) -> SearchResult:
    page = order[request.offset:request.offset + request.limit]
    return SearchResult(total=total, hits=_fetch_hits(conn, page, wanted, phrase), facets=facets)


def run_search(conn: sqlite3.Connection, request: SearchRequest, probes: Probes | None = None) -> SearchResult:
    """Run ``request`` on ``conn`` (a read transaction is the caller's; ``probes``: what earlier searches on
    ``conn`` learned, if kept)."""
    query = parse_query(request.query)
    scope = _Scope(request)
    if not query.raw.strip():  # no query: browse
        return _browse(conn, request, scope)
    items = _items(query)
    if not items:  # text with no word in it ("***"): nothing to find
        return SearchResult(total=0, hits=[], facets=_empty_facets() if request.facets else {})
    version, pending = conn.execute("SELECT (SELECT data_version FROM pragma_data_version()), "
                                    "(SELECT min(docid) FROM search_pairs_pending)").fetchone()
    cache = probes or Probes()
    known = cache.at(int(version))
    match = _Match(items, pending)
    counted, facets = _facets(conn, *scope.matches(match, joined=True)) if request.facets else (None, {})
    wanted = query.all_tokens()
    if request.sort in _SORT_SQL:
        total = counted if counted is not None else _count(conn, scope, match)
        source, args = scope.matches(match, joined=True)
        rows = conn.execute(f"SELECT f.rowid FROM {source} ORDER BY {_SORT_SQL[request.sort]} LIMIT ? OFFSET ?",
                            [*args, request.limit, request.offset]).fetchall()
        return SearchResult(total=total, hits=_fetch_hits(conn, [(int(r[0]), 0.0) for r in rows], wanted,
                                                          _phrase_pattern(query)), facets=facets)
    rare = [i for i, common in zip(items, _common_items(conn, scope, items, known), strict=True) if not common]
    if rare:
        total, order = _rank_rare(conn, scope, query, items, rare, match, request.offset + request.limit)
    else:
        total, order = _rank_common(conn, scope, query, items, match, request.offset + request.limit, cache)
        if counted is None and total > COUNT_EXACT:  # estimated (see _rank_common)
            result = _result(conn, request, total, order, wanted, facets, _phrase_pattern(query))
            return result.model_copy(update={"total_exact": False})
    return _result(conn, request, total if counted is None else counted, order, wanted, facets,
                   _phrase_pattern(query))


def _count(conn: sqlite3.Connection, scope: _Scope, match: _Match) -> int:
    source, args = scope.matches(match)
    return int(conn.execute(f"SELECT count(*) FROM {source}", args).fetchone()[0])


def _rank_rare(conn: sqlite3.Connection, scope: _Scope, query: ParsedQuery, items: list[_Item], rare: list[_Item],
               match: _Match, want: int) -> tuple[int, list[tuple[int, float]]]:
    """Every match, ranked by bm25 over the items that are not common (at most ``RANK_DF`` documents hold them:
    cheap); the common ones only filter. The number-lookup tier first. One statement (see ``_common_items``)."""
    args: list[object] = scope.params(_all(rare, lambda i: i.ranked))
    only = ""
    if len(rare) < len(items):
        rowids, match_args = match.rowids()
        only = f" AND f.rowid IN ({rowids})"
        args += match_args
    codes, code_args = _code_condition(scope, query)
    total, top, tier = conn.execute(
        f"WITH r AS MATERIALIZED (SELECT f.rowid AS docid, {BM25} AS b FROM {scope.source('search_fts')}{only}) "
        "SELECT (SELECT count(*) FROM r), "
        "(SELECT json_group_array(json_array(docid, b)) FROM (SELECT docid, b FROM r ORDER BY b, docid LIMIT ?)), "
        "(SELECT json_group_array(json_array(r.docid, r.b)) FROM r JOIN search_docs d ON d.docid = r.docid "
        f"WHERE {codes})", [*args, want + MAX_CODE_TIER, *code_args]).fetchone()
    ranked = sorted(((int(d), float(b)) for d, b in json.loads(top)), key=lambda t: (t[1], t[0]))
    in_tier = sorted(((int(d), float(b)) for d, b in json.loads(tier)), key=lambda t: (t[1], t[0]))
    return int(total), _merge([[(d, CODE_TIER_BONUS - b) for d, b in in_tier], [(d, -b) for d, b in ranked]], want)


def _rank_common(conn: sqlite3.Connection, scope: _Scope, query: ParsedQuery, items: list[_Item], match: _Match,
                 want: int, probes: Probes) -> tuple[int, list[tuple[int, float]]]:
    """Every item is common (bm25 would read their whole doclists, and its idf is near zero anyway): the
    number-lookup tier, then the documents holding every item in their heading with the user's exact diacritics,
    then in their heading, then the other matches; each tier most recently indexed first (``HEAD_K`` at most
    for a heading tier). Scores: ``CODE_TIER_BONUS``, 2, 1, 0.

    The total comes from the same scan as the newest matches, which stops after ``COUNT_EXACT`` + 1 of them: up
    to ``COUNT_EXACT`` it is exact; above, it is estimated from the share of the docid range those newest matches
    cover (docids grow with each document indexed), or for a caller who may not see every level, from the share
    of the documents they see (``_visible_share``). One statement (see ``_common_items``), and that share."""
    codes, code_args = _code_condition(scope, query)
    heading = (f"(SELECT json_group_array(docid) FROM (SELECT f.rowid AS docid FROM {scope.source('search_head')} "
               f"ORDER BY f.rowid DESC LIMIT ?))")
    exact = any(i.exact for i in items)
    newest_cte, args = scope.newest(match, COUNT_EXACT + 1, "n")
    count, oldest, first, last, newest, headed, exact_headed, tier = conn.execute(
        f"WITH {newest_cte} "
        "SELECT (SELECT count(*) FROM n), (SELECT min(docid) FROM n), "
        "(SELECT min(docid) FROM search_docs), (SELECT max(docid) FROM search_docs), "
        "(SELECT json_group_array(docid) FROM (SELECT docid FROM n ORDER BY docid DESC LIMIT ?)), "
        f"{heading}, {heading if exact else '(SELECT json_array())'}, "
        f"(SELECT json_group_array(d.docid) FROM search_docs d WHERE {codes} AND EXISTS "
        "(SELECT 1 FROM search_fts WHERE search_fts MATCH ? AND rowid = d.docid))",
        [*args, want + 2 * HEAD_K + MAX_CODE_TIER,
         *scope.params(_all(items, lambda i: i.head)), min(2 * want, HEAD_K),  # the exact ones are among them
         *([*scope.params(_all(items, lambda i: i.head_exact)), min(want, HEAD_K)] if exact else []),
         *code_args, match.words]).fetchone()
    matches = [int(d) for d in json.loads(newest)]
    total = int(count)
    if total > COUNT_EXACT:
        share = (last - oldest + 1) / max(1, last - first + 1) if scope.clearance >= MAX_LEVEL else \
            _visible_share(conn, scope, oldest, probes)
        total = max(COUNT_EXACT + 1, _two_digits(total / share))
    if want + 2 * HEAD_K + MAX_CODE_TIER > len(matches) == count > COUNT_EXACT:  # a deep page: read on
        deeper, deeper_args = scope.newest(match, want + 2 * HEAD_K + MAX_CODE_TIER, "m", below=matches[-1])
        matches += [int(r[0]) for r in conn.execute(f"WITH {deeper} SELECT docid FROM m", deeper_args)]
    return total, _merge([[(int(d), CODE_TIER_BONUS) for d in sorted(json.loads(tier), reverse=True)],
                          [(int(d), 2.0) for d in json.loads(exact_headed)],
                          [(int(d), 1.0) for d in json.loads(headed)],
                          [(d, 0.0) for d in matches]], want)


def _visible_share(conn: sqlite3.Connection, scope: _Scope, oldest: int, probes: Probes) -> float:
    """The share of the documents the caller sees that were indexed since ``oldest`` (a docid). The docid range
    cannot say it: classified documents take docids too, so an estimate over it would move with how many there
    are (and, set beside the exact count facets give, tell how many hold the query's words); counted over the
    visible documents only, the estimate depends on nothing the caller may not see. How many documents a
    clearance sees is remembered until the index changes (``Probes``)."""
    visible = f"(docid & {LEVEL_MASK}) <= {scope.clearance}"
    seen = probes.visible.get(scope.clearance)
    if seen is None:
        seen = probes.visible[scope.clearance] = int(
            conn.execute(f"SELECT count(*) FROM search_docs WHERE {visible}").fetchone()[0])
    since = int(conn.execute(f"SELECT count(*) FROM search_docs WHERE docid >= ? AND {visible}",
                             (oldest,)).fetchone()[0])
    return max(1, since) / max(1, seen)


def _two_digits(estimate: float) -> int:
    """An estimate rounded to two significant digits (38712.4 -> 39000): it does not look like a count."""
    step = 10 ** max(0, len(str(int(estimate))) - 2)
    return int(round(estimate / step) * step)


def _merge(tiers: Sequence[Sequence[tuple[int, float]]], want: int) -> list[tuple[int, float]]:
    """The first ``want`` of the tiers in order, each document once (at its first place)."""
    seen: set[int] = set()
    out = []
    for tier in tiers:
        for docid, score in tier:
            if docid not in seen:
                seen.add(docid)
                out.append((docid, score))
                if len(out) >= want:
                    return out
    return out


def _code_condition(scope: _Scope, query: ParsedQuery) -> tuple[str, list[object]]:
    """SQL condition on ``search_docs d``: in scope, and its số/ký hiệu is (or starts with) one the query looks
    up (``MAX_CODE_TIER`` documents at most); ``0`` when the query looks none up."""
    codes = query.codes[:MAX_CODE_TIER]
    if not codes:
        return "0", []
    keys = " OR ".join("(d.code_key = ? OR (d.code_key > ? AND d.code_key < ?))" for _ in codes)
    args: list[object] = [v for c in codes for v in (c, c + " ", c + "!")]
    visible = "" if scope.clearance >= MAX_LEVEL else f" AND d.level <= {scope.clearance}"
    extra = f" AND {scope.where}" if scope.where else ""
    return (f"d.docid IN (SELECT d.docid FROM search_docs d WHERE ({keys}){visible}{extra} "
            f"LIMIT {MAX_CODE_TIER})"), [*args, *scope.args]


def _browse(conn: sqlite3.Connection, request: SearchRequest, scope: _Scope) -> SearchResult:
    """An empty query: every visible document that passes the filters, newest first (or as sorted)."""
    conds = ([f"d.level <= {scope.clearance}"] if scope.clearance < MAX_LEVEL else []) + (
        [scope.where] if scope.where else [])
    cond = " WHERE " + " AND ".join(conds) if conds else ""
    total = int(conn.execute(f"SELECT count(*) FROM search_docs d{cond}", scope.args).fetchone()[0])
    facets = _facets(conn, f"search_docs d{cond}", scope.args)[1] if request.facets else {}
    if request.limit == 0 or request.offset >= total:
        return SearchResult(total=total, hits=[], facets=facets)
    order = _SORT_SQL["date_asc" if request.sort == "date_asc" else "date_desc"]
    rows = conn.execute(f"SELECT d.docid FROM search_docs d{cond} ORDER BY {order} LIMIT ? OFFSET ?",
                        [*scope.args, request.limit, request.offset]).fetchall()
    return SearchResult(total=total, hits=_fetch_hits(conn, [(int(r[0]), 0.0) for r in rows], set()),
                        facets=facets)


def _empty_facets() -> dict[str, list[FacetCount]]:
    return {name: [] for name in FACET_FIELDS}


def _facets(conn: sqlite3.Connection, source: str, args: list[object]) -> tuple[int, dict[str, list[FacetCount]]]:
    """The number of documents ``FROM source`` selects (``search_docs d``) and the value counts of every facet
    over all of them, not one page: one statement, the matches materialised once and grouped per facet."""
    groups = " UNION ALL ".join(
        f"SELECT {n} AS n, {column} AS v, count(*) AS c FROM m WHERE {column} IS NOT NULL GROUP BY {column}"
        for n, column in enumerate(_FACET_COLUMNS[name] for name in FACET_FIELDS))
    total, rows = conn.execute(
        "WITH m AS MATERIALIZED (SELECT d.type_name, d.year, d.organ_name, d.classification, d.batch, "
        f"d.file_code FROM {source}) SELECT (SELECT count(*) FROM m), "
        f"(SELECT json_group_array(json_array(n, v, c)) FROM ({groups}))", args).fetchone()
    out: dict[str, list[tuple[str, int]]] = {name: [] for name in FACET_FIELDS}
    for n, value, count in json.loads(rows):
        out[FACET_FIELDS[n]].append((str(value), int(count)))
    return int(total), {name: [FacetCount(value=v, count=c) for v, c in sorted(values, key=lambda vc: (-vc[1], vc[0]))
                               [:FACET_VALUES]] for name, values in out.items()}


# ----------------------------------------------------------------------------------------------- the port


WRITER_MMAP_BYTES = 0
READER_MMAP_BYTES = 1 << 30  # the first GiB of the database is read through mmap (counted in RSS: shared pages)
WAL_CHECKPOINT_PAGES = 10_000  # ~40 MB of WAL between checkpoints: index merges rewrite the same pages, so
# checkpointing less often writes each of them to the database file fewer times (indexing ~1.4x faster)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the database (WAL): the writer's, or a reader's (``readonly``: no journal settings)."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
    if not readonly:
        tune_writer(conn)
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MB of pages per connection
    if readonly:  # readers share the OS page cache instead of copying pages: ~1.3x more searches/s on 4 threads
        conn.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
    elif WRITER_MMAP_BYTES:
        conn.execute(f"PRAGMA mmap_size={WRITER_MMAP_BYTES}")
    return conn


def tune_writer(conn: sqlite3.Connection) -> None:
    """Journal settings of a connection that writes the index (the catalog's too: it writes index rows)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")


class SqliteSearchIndex:
    """``SearchIndex`` on SQLite FTS5, in the database file ``path`` (the archive's catalog database)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = connect(path)
        create_schema(self._conn)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            with self._lock:
                if self._closed:
                    conn.close()
                    raise sqlite3.ProgrammingError("the search index is closed")
                self._readers.append(conn)
            self._local.conn = conn
            self._local.probes = Probes()
        return conn

    def _write(self, action: Callable[[], object]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                action()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        self._write(lambda: write_entries(self._conn, entries))

    def delete(self, ids: Sequence[str]) -> None:
        self._write(lambda: delete_entries(self._conn, ids))

    def replace_all(self, entries: Iterable[IndexEntry]) -> int:
        count = 0

        def run() -> None:
            nonlocal count
            clear(self._conn)
            count = write_entries(self._conn, entries)

        self._write(run)
        with self._lock:
            optimize(self._conn)
        return count

    def search(self, request: SearchRequest) -> SearchResult:
        conn = self._reader()
        conn.execute("BEGIN")  # one snapshot: total, hits and facets agree while a writer commits
        try:
            return run_search(conn, request, self._local.probes)
        finally:
            conn.execute("COMMIT")

    def ids(self) -> set[str]:
        return {str(r[0]) for r in self._reader().execute("SELECT id FROM search_docs")}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._conn.close()
