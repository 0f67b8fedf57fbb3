"""Embedded full-text index on SQLite FTS5.

Text is folded by ``schemas.text.fold`` before it reaches FTS5 (FTS5's own ``remove_diacritics`` does not fold
đ→d), and queries are folded the same way, so ``nghi quyet`` finds ``Nghị quyết``. Columns: ``code``
(số/ký hiệu), ``title`` (type, subject, issuing body) and ``body`` (page text), weighted in that order.
Snippets are cut from the original NFC text: folding keeps offsets, so highlights show the real diacritics.
"""

from __future__ import annotations

import json
import sqlite3

from schemas.document import DocumentManifest, SearchHit, SearchResult
from schemas.metadata import CONTRACT_KEYS
from schemas.query import ParsedQuery
from schemas.text import fold, nfc, token_spans

SNIPPET_CHARS = 200
WEIGHTS = (0.0, 10.0, 4.0, 1.0)  # id, code, title, body

_DDL = """
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    id UNINDEXED, code, title, body, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS doc_text (id TEXT PRIMARY KEY, text TEXT NOT NULL);
"""


LAYOUT = "2"  # 2: an fts row has the rowid of its doc_text row (replacing a document is a rowid lookup, not a scan)


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_DDL)
    row = conn.execute("SELECT value FROM meta WHERE key = 'search_layout'").fetchone()
    if row is None or row[0] != LAYOUT:
        _relink(conn)


def _relink(conn: sqlite3.Connection) -> None:
    """Re-create the fts rows of an index written by an older layout, keyed by their doc_text rowids."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM fts")
        rows = conn.execute("SELECT t.rowid, t.id, t.text, d.metadata FROM doc_text t JOIN documents d ON d.id = t.id")
        for rowid, doc_id, text, metadata in rows.fetchall():
            md = json.loads(metadata)
            conn.execute("INSERT INTO fts(rowid, id, code, title, body) VALUES (?,?,?,?,?)",
                         (rowid, doc_id, fold(_code_text(md)), fold(_title_text(md)), fold(text)))
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('search_layout', ?)", (LAYOUT,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _title_text(md: dict[str, object]) -> str:
    return " ".join(str(md[k]) for k in ("type_name", "subject", "organ_name") if md.get(k))


def _code_text(md: dict[str, object]) -> str:
    number, notation = md.get("code_number"), md.get("code_notation")
    return f"{number or ''}-{notation or ''}" if (number or notation) else ""


def index_document(conn: sqlite3.Connection, manifest: DocumentManifest) -> None:
    """Replace the index rows of one document (call inside the caller's transaction)."""
    md = manifest.metadata.model_dump()
    text = nfc("\n\n".join(p.text for p in manifest.pages))
    old = conn.execute("SELECT rowid FROM doc_text WHERE id = ?", (manifest.id,)).fetchone()
    if old is not None:
        conn.execute("DELETE FROM fts WHERE rowid = ?", (old[0],))
        conn.execute("DELETE FROM doc_text WHERE rowid = ?", (old[0],))
    rowid = conn.execute("INSERT INTO doc_text(id, text) VALUES (?,?)", (manifest.id, text)).lastrowid
    conn.execute(
        "INSERT INTO fts(rowid, id, code, title, body) VALUES (?,?,?,?,?)",
        (rowid, manifest.id, fold(_code_text(md)), fold(_title_text(md)), fold(text)),
    )


def clear(conn: sqlite3.Connection) -> None:
    """Remove every index row (call inside the caller's transaction)."""
    conn.execute("DELETE FROM fts")
    conn.execute("DELETE FROM doc_text")


def _match_expression(query: ParsedQuery, *, any_term: bool) -> str:
    items = [f'"{t}"' for t in query.terms] + ['"' + " ".join(p) + '"' for p in query.phrases]
    return (" OR " if any_term else " AND ").join(items)


def make_snippet(text: str, wanted: set[str], width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The window of ``text`` with the most distinct query tokens, and highlight offsets within it."""
    spans = [(tok, s, e) for tok, s, e in token_spans(text) if tok in wanted]
    if not spans:
        cut = text[:width]
        return " ".join(cut.split()), []
    best_start, best_score = spans[0][1], -1
    for _, start, _ in spans:
        inside = {tok for tok, s, e in spans if start <= s and e <= start + width}
        if len(inside) > best_score:
            best_start, best_score = start, len(inside)
    lo = max(0, best_start - width // 4)
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    hi = min(len(text), lo + width)
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    window = text[lo:hi].replace("\n", " ").replace("\t", " ")
    marks = [(s - lo, e - lo) for _, s, e in spans if lo <= s and e <= hi]
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    shift = len(prefix)
    return prefix + window + suffix, [(s + shift, e + shift) for s, e in marks]


def search(conn: sqlite3.Connection, query: ParsedQuery, *, limit: int, offset: int) -> SearchResult:
    if query.empty or limit <= 0:
        return SearchResult(total=0, hits=[])
    expr = _match_expression(query, any_term=False)
    total = int(conn.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (expr,)).fetchone()[0])
    if total == 0 and len(query.terms) + len(query.phrases) > 1:
        expr = _match_expression(query, any_term=True)
        total = int(conn.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (expr,)).fetchone()[0])
    rows = conn.execute(
        f"SELECT fts.id, bm25(fts, {', '.join(map(str, WEIGHTS))}) AS rank, d.source, d.metadata, t.text "
        "FROM fts JOIN doc_text t ON t.rowid = fts.rowid JOIN documents d ON d.id = t.id "
        "WHERE fts MATCH ? ORDER BY rank, fts.id LIMIT ? OFFSET ?",
        (expr, limit, offset),
    ).fetchall()
    wanted = query.all_tokens()
    hits = []
    for doc_id, rank, source, metadata, text in rows:
        snippet, marks = make_snippet(text, wanted)
        md = json.loads(metadata)
        contract = {k: md.get(k) for k in CONTRACT_KEYS} | {k: v for k, v in md.items() if k not in CONTRACT_KEYS}
        hits.append(
            SearchHit(id=doc_id, source=source, score=round(-float(rank), 4), snippet=snippet, highlights=marks,
                      metadata=contract)
        )
    return SearchResult(total=total, hits=hits)
