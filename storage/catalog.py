"""Embedded catalog: one SQLite database (WAL) under the archive: the metadata of every stored document.

The catalog knows no search backend. The composition root (``flows.wiring``) gives it an ``IndexWriter`` when the
search index lives in the same database (the embedded FTS5 index, ``storage.search_sqlite.SqliteIndexWriter``):
then a document's catalog row and its index rows are written in ONE transaction, so a document is either
catalogued and searchable, or neither. With an external index (Elasticsearch) it gets none, and writes no index
rows: the caller indexes the document there itself (before committing it here: the catalog row marks it done).
The database is a cache of the manifests in the object store and can be rebuilt from them. One writer at a time
(a lock), any number of readers; searches go through the search index port (``storage.search_index``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from schemas.document import DocumentManifest
from schemas.metadata import DocumentMetadata
from schemas.reasons import Reason, codes_json, stored_reasons
from schemas.search import IndexEntry
from schemas.text import fold
from storage.search_index import entry_of
from storage.sqlite_tx import write_transaction


class IndexWriter(Protocol):
    """A search index kept in the catalog's own database, written on the catalog's connection inside the
    catalog's transaction (every method but ``prepare`` and ``compact`` runs in a transaction the catalog holds)."""

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Connection settings and the index tables (created, or migrated from an older layout)."""

    def write(self, conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
        """Add or replace the rows of ``entries``; the number of documents written."""

    def delete(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None: ...

    def clear(self, conn: sqlite3.Connection) -> None:
        """Remove every index row."""

    def optimize(self, conn: sqlite3.Connection) -> None:
        """After a rebuild (its transaction committed): make the index fast to search."""

    def compact(self, conn: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> int:
        """Merge the index in small transactions of its own, each taken under ``lock``; the steps that did work."""


SCHEMA_VERSION = 1
_INDEX_BATCH = 256  # documents whose index rows a rebuild writes at once

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    batch TEXT NOT NULL,
    status TEXT NOT NULL,
    pages INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    review_reasons TEXT NOT NULL,
    manifest_key TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
# added later (older catalogs get it on open): when the document was digitised, its manifest's ``created_at``
_DIGITISED_COLUMN = "digitised_at"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    sha256: str
    source: str
    batch: str
    status: str
    pages: int
    metadata: dict[str, object]
    review_reasons: list[Reason]  # codes (rows of older versions: sentences, decoded)
    manifest_key: str
    file_code: str | None = None  # mã hồ sơ the document is filed in (manifest, with corrections applied)
    sequence: int | None = None  # its số thứ tự in that hồ sơ


_COLUMNS = "id, sha256, source, batch, status, pages, metadata, review_reasons, manifest_key, file_code, sequence"
# the hồ sơ columns (added to catalogs of earlier versions, then filled from the manifests: ``filing_pending``)
_FILING_COLUMNS = (("file_code", "TEXT"), ("sequence", "INTEGER"))
FILING_PENDING = "filing_pending"
IDENTITY_FIELDS = ("organ_name", "type_name", "code_number", "code_notation", "issued_date")


def _entry(row: tuple[object, ...]) -> CatalogEntry:
    return CatalogEntry(
        id=str(row[0]),
        sha256=str(row[1]),
        source=str(row[2]),
        batch=str(row[3]),
        status=str(row[4]),
        pages=int(row[5]),  # type: ignore[call-overload]
        metadata=json.loads(str(row[6])),
        review_reasons=stored_reasons(json.loads(str(row[7]))),
        manifest_key=str(row[8]),
        file_code=None if row[9] is None else str(row[9]),
        sequence=None if row[10] is None else int(row[10]),  # type: ignore[call-overload]
    )


def identity_key(metadata: DocumentMetadata | Mapping[str, object]) -> tuple[str, ...] | None:
    """The folded (organ, type, number, notation, date) of a document; ``None`` unless all five are known.

    The date (ISO) is last and kept as is, so it can be matched exactly in SQL."""
    md = metadata.model_dump() if isinstance(metadata, DocumentMetadata) else metadata
    values = [md.get(name) for name in IDENTITY_FIELDS]
    if not all(isinstance(v, str) and v.strip() for v in values):
        return None
    texts = [str(v) for v in values]
    return (*(" ".join(fold(v).split()) for v in texts[:-1]), texts[-1].strip())


class SqliteCatalog:
    """The catalog in the database file ``path``; ``indexer``: the search index written with it in one transaction
    (``None``: metadata only, for an external search index or a reader)."""

    def __init__(self, path: Path, *, indexer: IndexWriter | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.indexer = indexer
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._claims: dict[tuple[str, ...], dict[str, str]] = {}
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._add_filing_columns()
            self._add_digitised_column()
            if indexer is not None:
                indexer.prepare(self._conn)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _add_filing_columns(self) -> None:
        """The hồ sơ columns, on a catalog of an earlier version: its rows are marked to be filled from the
        manifests (``filing_pending``; ``flows.files`` does it on first use, ``sohoa reindex`` rewrites them)."""
        have = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(documents)")}
        missing = [(name, kind) for name, kind in _FILING_COLUMNS if name not in have]
        if not missing:
            return

        def add() -> None:
            for name, kind in missing:
                self._conn.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
            if self._conn.execute("SELECT count(*) FROM documents").fetchone()[0]:
                self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, '1')", (FILING_PENDING,))

        try:
            self._transaction(add)
        except sqlite3.OperationalError:  # another process added them first
            if {str(r[1]) for r in self._conn.execute("PRAGMA table_info(documents)")} < {n for n, _ in missing}:
                raise

    def filing_pending(self) -> bool:
        """Whether rows written before the hồ sơ columns existed still lack them."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (FILING_PENDING,)).fetchone()
        return row is not None

    def fill_filing(self, filing: Iterable[tuple[str, str | None, int | None]]) -> None:
        """Set (id, file_code, sequence) of rows written before the hồ sơ columns existed; clears the mark."""

        def fill() -> None:
            self._conn.executemany("UPDATE documents SET file_code = ?, sequence = ? WHERE id = ?",
                                   [(code, seq, doc_id) for doc_id, code, seq in filing])
            self._conn.execute("DELETE FROM meta WHERE key = ?", (FILING_PENDING,))

        self._transaction(fill)

    def _add_digitised_column(self) -> None:
        have = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(documents)")}
        if _DIGITISED_COLUMN not in have:
            try:
                self._conn.execute(f"ALTER TABLE documents ADD COLUMN {_DIGITISED_COLUMN} TEXT")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self, action: Callable[[], object]) -> None:
        """``action`` in one write transaction (``BEGIN IMMEDIATE``), rolled back if it raises."""
        write_transaction(self._conn, self._lock, action)

    def commit_document(self, manifest: DocumentManifest, manifest_key: str) -> None:
        """Catalogue (and index, with an ``indexer``) a stored document atomically, replacing any earlier rows of
        the same id."""
        self._transaction(lambda: self._write(manifest, manifest_key))

    def remove_document(self, doc_id: str) -> None:
        """Take a document out of the catalog (and out of the ``indexer``'s index, in the same transaction)."""

        def remove() -> None:
            self._conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            if self.indexer is not None:
                self.indexer.delete(self._conn, [doc_id])

        self._transaction(remove)

    def rebuild(self, documents: Iterable[tuple[DocumentManifest, str]]) -> int:
        """Replace every catalog (and ``indexer``) row with ``documents`` (manifest, manifest key) in ONE
        transaction: readers see the old catalog until the new one is complete. Returns the number of documents."""
        count = 0

        def replace() -> None:
            nonlocal count
            self._conn.execute("DELETE FROM documents")
            self._conn.execute("DELETE FROM meta WHERE key = ?", (FILING_PENDING,))  # every row rewritten
            if self.indexer is not None:
                self.indexer.clear(self._conn)
            pending: list[IndexEntry] = []
            for manifest, key in documents:
                self._write_row(manifest, key)
                count += 1
                if self.indexer is not None:
                    pending.append(entry_of(manifest))
                    if len(pending) >= _INDEX_BATCH:
                        self.indexer.write(self._conn, pending)
                        pending = []
            if self.indexer is not None:
                self.indexer.write(self._conn, pending)

        with self._lock:
            self._transaction(replace)
            if self.indexer is not None:
                self.indexer.optimize(self._conn)
        self._claims.clear()
        return count

    def compact_search(self) -> int:
        """Merge the ``indexer``'s index (in small steps, so concurrent writers wait at most one); a digitisation
        run does it at its end. Returns the steps that did work (0 without an ``indexer``)."""
        return 0 if self.indexer is None else self.indexer.compact(self._conn, self._lock)

    def _write(self, manifest: DocumentManifest, manifest_key: str) -> None:
        self._write_row(manifest, manifest_key)
        if self.indexer is not None:
            self.indexer.write(self._conn, [entry_of(manifest)])

    def _write_row(self, manifest: DocumentManifest, manifest_key: str) -> None:
        md = manifest.metadata.model_dump(mode="json", exclude={"evidence"})
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._conn.execute(
            "INSERT OR REPLACE INTO documents (id, sha256, source, batch, status, pages, metadata, review_reasons, "
            f"manifest_key, updated_at, file_code, sequence, {_DIGITISED_COLUMN}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                manifest.id,
                manifest.sha256,
                manifest.source,
                manifest.batch,
                manifest.status,
                len(manifest.pages),
                json.dumps(md, ensure_ascii=False),
                json.dumps(codes_json(manifest.review_reasons), ensure_ascii=False),
                manifest_key,
                now,
                manifest.file_code,
                manifest.sequence,
                manifest.created_at,
            ),
        )

    def get(self, doc_id: str) -> CatalogEntry | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self, *, batch: str | None = None) -> list[CatalogEntry]:
        """Every catalogued document (or those of one batch), ordered by batch then source."""
        sql = f"SELECT {_COLUMNS} FROM documents"
        args: tuple[str, ...] = ()
        if batch is not None:
            sql, args = sql + " WHERE batch = ?", (batch,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY batch, source, id", args).fetchall()
        return [_entry(row) for row in rows]

    def filed(self, file_code: str | None = None) -> list[CatalogEntry]:
        """The documents filed in a hồ sơ (``file_code``: in that one), by mã hồ sơ, số thứ tự, id."""
        sql = f"SELECT {_COLUMNS} FROM documents WHERE file_code IS NOT NULL AND file_code != ''"
        args: tuple[str, ...] = ()
        if file_code is not None:
            sql, args = sql + " AND file_code = ?", (file_code,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY file_code, sequence, id", args).fetchall()
        return [_entry(row) for row in rows]

    def digitised_since(self, since: str) -> list[tuple[CatalogEntry, str]]:
        """Documents digitised at or after ``since`` (ISO 8601, UTC) with that time: the manifest's
        ``created_at``, or for a row catalogued before that was kept, when it was catalogued."""
        when = f"COALESCE({_DIGITISED_COLUMN}, updated_at)"
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS}, {when} FROM documents WHERE {when} >= ? ORDER BY {when}",
                                      (since,)).fetchall()
        return [(_entry(row[:-1]), str(row[-1])) for row in rows]

    def batches(self) -> list[str]:
        """Names of the batches in the catalog."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT batch FROM documents ORDER BY batch").fetchall()
        return [str(r[0]) for r in rows]

    def find_same_identity(
        self, metadata: DocumentMetadata | Mapping[str, object], *, exclude_id: str | None = None
    ) -> list[CatalogEntry]:
        """Catalogued documents whose identity (organ, type, number, notation, date) equals ``metadata``'s.

        Text is compared folded (``schemas.text.fold``: case and diacritics ignored, whitespace collapsed).
        Empty when any of the five fields is missing: a partial identity proves nothing.
        """
        key = identity_key(metadata)
        if key is None:
            return []
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE json_extract(metadata, '$.issued_date') = ? "
                "ORDER BY batch, source, id",
                (key[-1],),
            ).fetchall()
        found = [_entry(row) for row in rows]
        return [e for e in found if e.id != exclude_id and identity_key(e.metadata) == key]

    def claim_identity(self, doc_id: str, source: str, metadata: DocumentMetadata) -> list[tuple[str, str]]:
        """(id, source) of OTHER documents with the same identity, catalogued or claimed earlier by this
        catalog object (documents of a run still being processed), then record this document's claim.

        Atomic under the catalog lock, so of two same-identity documents digitised in parallel the second
        one always sees the first.
        """
        key = identity_key(metadata)
        if key is None:
            return []
        with self._lock:
            same = [(e.id, e.source) for e in self.find_same_identity(metadata, exclude_id=doc_id)]
            claimed = self._claims.setdefault(key, {})
            same += [(i, src) for i, src in claimed.items() if i != doc_id and i not in {s[0] for s in same}]
            claimed.setdefault(doc_id, source)
        return same

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM documents").fetchone()[0])
