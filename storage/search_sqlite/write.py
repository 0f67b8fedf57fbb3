"""Writes to the embedded index, inside the caller's write transaction (the catalog's, or the index's own):
the tables (and the migration of an older layout), adding, replacing and deleting a document's rows."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from schemas.query import code_key
from schemas.search import UNCLASSIFIED, IndexEntry, secrecy_level
from schemas.text import nfc
from storage.search_sqlite.schema import (
    DDL,
    DOC_COLUMNS,
    LAYOUT,
    LEVEL_BITS,
    MAX_LEVEL,
    PAIRS_HASH_BYTES,
    SNIPPET_PREFIX,
    WORDSETS_DDL,
)
from storage.search_sqlite.tokens import _fts_values

PAIRS_BATCH = 500  # pending documents whose pairs are written at once (a phrase scans at most these on the words)
_BATCH = 256  # rows per executemany
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the index tables; an index of an older layout is migrated to this one (in one transaction)."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(WORDSETS_DDL)
    if _layout(conn) == LAYOUT and _generation(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _layout(conn) != LAYOUT:  # another process may have migrated it meanwhile
            _migrate(conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('search_layout', ?)", (LAYOUT,))
            _new_generation(conn)
        if not _generation(conn):  # an index of this layout written before generations were kept
            _new_generation(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _layout(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'search_layout'").fetchone()
    return None if row is None else str(row[0])


def _generation(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'search_generation'").fetchone()
    return None if row is None else str(row[0])


def _new_generation(conn: sqlite3.Connection) -> None:
    """Begin a new generation of the index's documents (``facets.FacetColumns`` reads them all again)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('search_generation', ?)", (uuid.uuid4().hex,))


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
    for statement in DDL.split(";"):  # not executescript: it would commit the caller's transaction
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
        conn.execute("INSERT INTO meta(key, value) VALUES ('search_deleted', '1') ON CONFLICT(key) DO UPDATE "
                     "SET value = CAST(value AS INTEGER) + 1")  # counted: facets.FacetColumns keys on it
        conn.executemany("DELETE FROM search_text WHERE docid = ?", [(r[0],) for r in old])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_entries(conn: sqlite3.Connection, entries: Iterable[IndexEntry], *, bulk: Preparer | None = None) -> int:
    """Add or replace the index rows of ``entries`` (call inside the caller's write transaction: the catalog
    writes its row and these in one). Returns the number of documents written.
    ``bulk``: a rebuild's stream of documents, whose batches ``bulk`` turns into rows (``prepare_rows`` on each,
    in order; ``bulk.PreparePool`` does it in other processes); their pairs go straight to ``search_pairs`` (after
    any pending ones, so the pending documents stay the newest): the transaction holds many documents, and FTS5
    writes a segment whenever its memory (``PAIRS_HASH_BYTES``) is full."""
    if bulk is None:
        return sum(_insert_rows(conn, rows) for rows in map(prepare_rows, _batches(entries)))
    flush_pairs(conn, at_least=1)
    return sum(_insert_rows(conn, rows, pairs_pending=False) for rows in bulk(_batches(entries)))


Preparer = Callable[[Iterable[list[IndexEntry]]], Iterable[list["DocRows"]]]


def _batches(entries: Iterable[IndexEntry]) -> Iterator[list[IndexEntry]]:
    batch: list[IndexEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def flush_pairs(conn: sqlite3.Connection, at_least: int | None = None) -> None:
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


class DocRows(NamedTuple):
    """A document's index rows but its docid (given as they are written): a pure function of its entry, so
    ``prepare_rows`` may run in another process (``bulk.PreparePool``)."""

    id: str
    level: int  # secrecy level: the docid's low bits
    doc: tuple[object, ...]  # the ``search_docs`` columns after docid
    metadata: str  # JSON, without evidence
    text: str  # NFC
    main: tuple[str, str, str, str]  # search_fts: code, title, body, exact
    head: tuple[str, str, str]  # search_head: code, title, exact
    pairs: str  # search_pairs


def prepare_rows(entries: list[IndexEntry]) -> list[DocRows]:
    """The rows of ``entries`` (the last of two entries with one id wins)."""
    return [_doc_rows(e) for e in {e.id: e for e in entries}.values()]


def _doc_rows(e: IndexEntry) -> DocRows:
    level = min(max(e.secrecy_level, 0), MAX_LEVEL)
    md = dict(e.metadata)
    md.pop("evidence", None)
    text = nfc(e.text)
    issued = e.issued_date if e.issued_date and _ISO_DATE.match(e.issued_date) else None
    classification = _text_value(md.get("classification")) or UNCLASSIFIED
    doc = (e.id, e.source, e.batch, e.file_code, e.status, issued, e.year, level, _text_value(md.get("type_name")),
           _text_value(md.get("organ_name")), classification, code_key(md.get("code_number"), md.get("code_notation")))
    main, head, pairs = _fts_values(md, text)
    return DocRows(e.id, level, doc, json.dumps(md, ensure_ascii=False), text, main, head, pairs)


def _insert_rows(conn: sqlite3.Connection, rows: list[DocRows], *, pairs_pending: bool = True) -> int:
    _delete_rows(conn, [r.id for r in rows])
    serial = _next_serial(conn)
    held = [((serial + n) << LEVEL_BITS | r.level, r) for n, r in enumerate(rows)]
    conn.executemany(f"INSERT INTO search_docs({DOC_COLUMNS}) VALUES ({','.join('?' * 13)})",
                     [(d, *r.doc) for d, r in held])
    conn.executemany("INSERT INTO search_text(docid, metadata, text, folded) VALUES (?, ?, ?, ?)",
                     [(d, r.metadata, r.text, r.main[2][:SNIPPET_PREFIX]) for d, r in held])
    conn.executemany("INSERT INTO search_fts(rowid, code, title, body, exact) VALUES (?, ?, ?, ?, ?)",
                     [(d, *r.main) for d, r in held])
    conn.executemany("INSERT INTO search_head(rowid, code, title, exact) VALUES (?, ?, ?, ?)",
                     [(d, *r.head) for d, r in held])
    pairs = "search_pairs_pending(docid, pairs)" if pairs_pending else "search_pairs(rowid, pairs)"
    conn.executemany(f"INSERT INTO {pairs} VALUES (?, ?)", [(d, r.pairs) for d, r in held])
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('search_serial', ?)",
                 (str(serial + len(rows) - 1),))
    if pairs_pending:
        flush_pairs(conn)
    return len(rows)


def _next_serial(conn: sqlite3.Connection) -> int:
    """The serial of the next document: above every one ever given (``meta``'s ``search_serial``), not only
    above the documents held: a docid is never given twice, so what ``facets.FacetColumns`` read for one stays
    true (an index written before that key was kept starts from its highest docid)."""
    top, given = conn.execute(
        "SELECT (SELECT max(docid) FROM search_docs), "
        "(SELECT value FROM meta WHERE key = 'search_serial')").fetchone()
    return max((int(top) >> LEVEL_BITS) if top is not None else 0, int(given) if given is not None else 0) + 1


def delete_entries(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Remove the index rows of ``ids`` (inside the caller's write transaction)."""
    _delete_rows(conn, ids)


def clear(conn: sqlite3.Connection) -> None:
    """Remove every index row (inside the caller's write transaction). A new generation begins (see
    ``facets.FacetColumns``); serials go on from where they were."""
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('delete-all')")
    conn.execute("INSERT INTO search_head(search_head) VALUES ('delete-all')")
    conn.execute("INSERT INTO search_pairs(search_pairs) VALUES ('delete-all')")
    conn.execute("DELETE FROM search_pairs_pending")
    conn.execute("DELETE FROM search_docs")
    conn.execute("DELETE FROM search_text")
    conn.execute("DELETE FROM search_wordsets")
    _new_generation(conn)
