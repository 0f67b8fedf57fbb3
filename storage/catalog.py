"""The catalog: the metadata of every stored document, in one database: the SQLite file ``ARCHIVE/catalog.sqlite``
(WAL; the embedded default) or, with ``SOHOA_DATABASE_URL``, a PostgreSQL database several hosts share. Its SQL is
written once (``storage.db``); the dialects differ only where the SQL does (``ddl``, the JSON lookup of
``find_same_identity``, the row lock of ``claim_identity``, the column listing of ``_migrate``).

The catalog knows no search backend. The composition root (``flows.wiring``) gives it an ``IndexWriter`` when the
search index lives in the same database (the embedded FTS5 index, ``storage.search_sqlite.SqliteIndexWriter``):
then a document's catalog row and its index rows are written in ONE transaction, so a document is either
catalogued and searchable, or neither. With an external index (Elasticsearch) it gets none, and writes no index
rows: the caller indexes the document there itself (before committing it here: the catalog row marks it done).
The embedded index lives in the SQLite file only: a catalog in PostgreSQL takes no ``IndexWriter`` (the composition
root refuses that combination: with a database URL the search index is Elasticsearch).
The database is a cache of the manifests in the object store and can be rebuilt from them. One writer at a time
(a lock), any number of readers; searches go through the search index port (``storage.search_index``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from schemas.document import DocumentManifest
from schemas.metadata import DocumentMetadata
from schemas.reasons import Reason, codes_json, stored_reasons
from schemas.search import IndexEntry
from schemas.text import fold
from storage.db import Database, SqliteDatabase, open_database
from storage.search_index import entry_of


class IndexWriter(Protocol):
    """A search index kept in the catalog's own database, written on the catalog's connection inside the
    catalog's transaction (every method but ``prepare`` and ``compact`` runs in a transaction the catalog holds)."""

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Connection settings and the index tables (created, or migrated from an older layout)."""

    def write(self, conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
        """Add or replace the rows of ``entries``; the number of documents written."""

    def write_all(self, conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
        """``write`` for a rebuild: ``entries`` is a stream of every document (it may be read ahead)."""

    def delete(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None: ...

    def clear(self, conn: sqlite3.Connection) -> None:
        """Remove every index row."""

    def optimize(self, conn: sqlite3.Connection) -> None:
        """After a rebuild (its transaction committed): make the index fast to search."""

    def compact(self, conn: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> int:
        """Merge the index in small transactions of its own, each taken under ``lock``; the steps that did work."""


SCHEMA_VERSION = 1

# the tables, created IF NOT EXISTS (one statement each: PostgreSQL runs them one by one); ``documents`` as the first
# version had it, the later columns are added by ``_migrate`` (older SQLite catalogs, and new databases alike)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS documents (
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
)""",
    # duplicate detection across processes and hosts (``claim_identity``): one row per identity, locked by each
    # claimer, and the documents that claimed it while being digitised
    "CREATE TABLE IF NOT EXISTS identity_locks (identity TEXT PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS identity_claims (
    identity TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (identity, doc_id)
)""",
)
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sohoa:catalog schema'))"  # concurrent creators wait
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


_UPSERT_COLUMNS = ("id", "sha256", "source", "batch", "status", "pages", "metadata", "review_reasons", "manifest_key",
                   "updated_at", "file_code", "sequence", _DIGITISED_COLUMN)
_UPSERT = (f"INSERT INTO documents ({', '.join(_UPSERT_COLUMNS)}) VALUES ({', '.join('?' for _ in _UPSERT_COLUMNS)}) "
           "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLUMNS[1:]))
_SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def ddl(statement: str, dialect: str) -> str:
    """A table's DDL in ``dialect``: in PostgreSQL every TEXT column compares byte-wise (``COLLATE "C"``) as in
    SQLite, whatever the database's locale, so ``ORDER BY`` and the ISO-time comparisons give the same answers."""
    return statement.replace(" TEXT", ' TEXT COLLATE "C"') if dialect == "postgres" else statement


def catalog_exists(target: Path | str) -> bool:
    """Whether the catalog at ``target`` (a SQLite file's path or a PostgreSQL URL) exists; creates nothing."""
    if isinstance(target, Path):
        return target.exists()
    db = open_database(target)
    try:
        return bool(db.execute("SELECT to_regclass('documents') IS NOT NULL").fetchone()[0])
    finally:
        db.close()


class Catalog:
    """The catalog in ``target``: the SQLite file at that path, or the PostgreSQL database of that
    ``postgresql://`` URL. ``indexer``: the search index written with it in one transaction (SQLite only;
    ``None``: metadata only, for an external search index or a reader)."""

    def __init__(self, target: Path | str, *, indexer: IndexWriter | None = None) -> None:
        self._db: Database = open_database(target)
        if indexer is not None and self._db.dialect != "sqlite":
            self._db.close()
            raise ValueError("the embedded search index lives in a SQLite catalog only: with a database URL, "
                             "index documents in an external search index (Elasticsearch)")
        self.path: Path | None = Path(target) if self._db.dialect == "sqlite" else None  # None: in PostgreSQL
        self.indexer = indexer
        try:
            if isinstance(self._db, SqliteDatabase):
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._set_up()
            if indexer is not None:
                indexer.prepare(self._sqlite().conn)
        except BaseException:
            self._db.close()
            raise

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def sqlite_connection(self) -> sqlite3.Connection | None:
        """The SQLite connection the catalog (and its ``indexer``) writes on; ``None`` in PostgreSQL."""
        return self._db.conn if isinstance(self._db, SqliteDatabase) else None

    def _sqlite(self) -> SqliteDatabase:
        assert isinstance(self._db, SqliteDatabase), "the embedded index needs a SQLite catalog"
        return self._db

    def _set_up(self) -> None:
        """The tables and the columns later versions added, in one transaction: two processes (or hosts) starting
        at once wait for each other (SQLite's write lock; PostgreSQL: an advisory lock) instead of failing."""
        with self._db.transaction():
            if self._db.dialect == "postgres":
                self._db.execute(_SCHEMA_LOCK)
            for statement in _SCHEMA:
                self._db.execute(ddl(statement, self._db.dialect))
            self._migrate()
            self._db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
                             (str(SCHEMA_VERSION),))

    def _columns(self, table: str) -> set[str]:
        if self._db.dialect == "postgres":
            rows = self._db.execute("SELECT column_name FROM information_schema.columns "
                                    "WHERE table_schema = current_schema() AND table_name = ?", (table,)).fetchall()
            return {str(r[0]) for r in rows}
        return {str(r[1]) for r in self._db.execute(f"PRAGMA table_info({table})").fetchall()}

    def _migrate(self) -> None:
        """The columns of later versions, on a catalog of an earlier one. Rows written before the hồ sơ columns
        existed are marked to be filled from the manifests (``filing_pending``; ``flows.files`` does it on first
        use, ``sohoa reindex`` rewrites them)."""
        have = self._columns("documents")
        missing = [(name, kind) for name, kind in (*_FILING_COLUMNS, (_DIGITISED_COLUMN, "TEXT")) if name not in have]
        for name, kind in missing:
            self._db.execute(ddl(f"ALTER TABLE documents ADD COLUMN {name} {kind}", self._db.dialect))
        filing = {name for name, _ in _FILING_COLUMNS}
        if filing & {name for name, _ in missing} and self._db.execute("SELECT count(*) FROM documents").fetchone()[0]:
            self._db.execute(_SET_META, (FILING_PENDING, "1"))

    def filing_pending(self) -> bool:
        """Whether rows written before the hồ sơ columns existed still lack them."""
        return self._db.execute("SELECT value FROM meta WHERE key = ?", (FILING_PENDING,)).fetchone() is not None

    def fill_filing(self, filing: Iterable[tuple[str, str | None, int | None]]) -> None:
        """Set (id, file_code, sequence) of rows written before the hồ sơ columns existed; clears the mark."""
        rows = [(code, seq, doc_id) for doc_id, code, seq in filing]
        with self._db.transaction():
            if rows:
                self._db.executemany("UPDATE documents SET file_code = ?, sequence = ? WHERE id = ?", rows)
            self._db.execute("DELETE FROM meta WHERE key = ?", (FILING_PENDING,))

    def close(self) -> None:
        self._db.close()

    def commit_document(self, manifest: DocumentManifest, manifest_key: str) -> None:
        """Catalogue (and index, with an ``indexer``) a stored document atomically, replacing any earlier rows of
        the same id."""
        with self._db.transaction():
            self._write_row(manifest, manifest_key)
            if self.indexer is not None:
                self.indexer.write(self._sqlite().conn, [entry_of(manifest)])

    def remove_document(self, doc_id: str) -> None:
        """Take a document out of the catalog (and out of the ``indexer``'s index, in the same transaction)."""
        with self._db.transaction():
            self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._db.execute("DELETE FROM identity_claims WHERE doc_id = ?", (doc_id,))
            if self.indexer is not None:
                self.indexer.delete(self._sqlite().conn, [doc_id])

    def rebuild(self, documents: Iterable[tuple[DocumentManifest, str]]) -> int:
        """Replace every catalog (and ``indexer``) row with ``documents`` (manifest, manifest key) in ONE
        transaction: readers see the old catalog until the new one is complete. Returns the number of documents."""
        count = 0
        conn = self.sqlite_connection

        def catalogued() -> Iterator[IndexEntry]:
            """The index entries of ``documents``, each document's catalog row written as it is read."""
            nonlocal count
            for manifest, key in documents:
                self._write_row(manifest, key)
                count += 1
                yield entry_of(manifest)

        with self._db.transaction():
            self._db.execute("DELETE FROM documents")
            self._db.execute("DELETE FROM identity_claims")
            self._db.execute("DELETE FROM meta WHERE key = ?", (FILING_PENDING,))  # every row rewritten
            if self.indexer is not None and conn is not None:
                self.indexer.clear(conn)
                self.indexer.write_all(conn, catalogued())  # the index rows: read ahead, prepared apart
            else:
                for manifest, key in documents:
                    self._write_row(manifest, key)
                    count += 1
        if self.indexer is not None and conn is not None:
            with self._sqlite().lock:
                self.indexer.optimize(conn)
        return count

    def compact_search(self) -> int:
        """Merge the ``indexer``'s index (in small steps, so concurrent writers wait at most one); a digitisation
        run does it at its end. Returns the steps that did work (0 without an ``indexer``)."""
        if self.indexer is None:
            return 0
        db = self._sqlite()
        return self.indexer.compact(db.conn, db.lock)

    def _write_row(self, manifest: DocumentManifest, manifest_key: str) -> None:
        md = manifest.metadata.model_dump(mode="json", exclude={"evidence"})
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._db.execute(_UPSERT, (
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
        ))

    def get(self, doc_id: str) -> CatalogEntry | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self, *, batch: str | None = None) -> list[CatalogEntry]:
        """Every catalogued document (or those of one batch), ordered by batch then source."""
        sql = f"SELECT {_COLUMNS} FROM documents"
        args: tuple[str, ...] = ()
        if batch is not None:
            sql, args = sql + " WHERE batch = ?", (batch,)
        return [_entry(row) for row in self._db.execute(sql + " ORDER BY batch, source, id", args).fetchall()]

    def filed(self, file_code: str | None = None) -> list[CatalogEntry]:
        """The documents filed in a hồ sơ (``file_code``: in that one), by mã hồ sơ, số thứ tự, id."""
        sql = f"SELECT {_COLUMNS} FROM documents WHERE file_code IS NOT NULL AND file_code != ''"
        args: tuple[str, ...] = ()
        if file_code is not None:
            sql, args = sql + " AND file_code = ?", (file_code,)
        return [_entry(row) for row in self._db.execute(sql + " ORDER BY file_code, sequence, id", args).fetchall()]

    def digitised_since(self, since: str) -> list[tuple[CatalogEntry, str]]:
        """Documents digitised at or after ``since`` (ISO 8601, UTC) with that time: the manifest's
        ``created_at``, or for a row catalogued before that was kept, when it was catalogued."""
        when = f"COALESCE({_DIGITISED_COLUMN}, updated_at)"
        rows = self._db.execute(f"SELECT {_COLUMNS}, {when} FROM documents WHERE {when} >= ? ORDER BY {when}, id",
                                (since,)).fetchall()
        return [(_entry(row[:-1]), str(row[-1])) for row in rows]

    def batches(self) -> list[str]:
        """Names of the batches in the catalog."""
        return [str(r[0]) for r in self._db.execute("SELECT DISTINCT batch FROM documents ORDER BY batch").fetchall()]

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
        issued = ("(metadata::jsonb ->> 'issued_date')" if self._db.dialect == "postgres"
                  else "json_extract(metadata, '$.issued_date')")
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM documents WHERE {issued} = ? ORDER BY batch, source, id",
                                (key[-1],)).fetchall()
        found = [_entry(row) for row in rows]
        return [e for e in found if e.id != exclude_id and identity_key(e.metadata) == key]

    def claim_identity(self, doc_id: str, source: str, metadata: DocumentMetadata) -> list[tuple[str, str]]:
        """(id, source) of OTHER documents with the same identity, catalogued or claimed earlier (documents still
        being digitised, by any process or host sharing this catalog), then record this document's claim.

        One transaction holding the identity's row lock (SQLite: the database's write lock), so of two
        same-identity documents digitised at once, on one host or two, the second one always sees the first.
        A claim ends with its document's removal or a rebuild; a catalogued document is found by its row.
        """
        key = identity_key(metadata)
        if key is None:
            return []
        identity = json.dumps(key, ensure_ascii=False)
        with self._db.transaction():
            self._db.execute("INSERT INTO identity_locks (identity) VALUES (?) ON CONFLICT (identity) DO NOTHING",
                             (identity,))
            if self._db.dialect == "postgres":  # claimers of this identity queue here until the holder commits
                self._db.execute("SELECT identity FROM identity_locks WHERE identity = ? FOR UPDATE", (identity,))
            same = [(e.id, e.source) for e in self.find_same_identity(metadata, exclude_id=doc_id)]
            claims = self._db.execute(
                "SELECT c.doc_id, c.source FROM identity_claims c WHERE c.identity = ? AND c.doc_id != ? "
                "AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.doc_id) ORDER BY c.claimed_at, c.doc_id",
                (identity, doc_id)).fetchall()
            known = {i for i, _ in same}
            same += [(str(i), str(src)) for i, src in claims if i not in known]
            self._db.execute("INSERT INTO identity_claims (identity, doc_id, source, claimed_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (identity, doc_id) DO NOTHING",
                             (identity, doc_id, source, datetime.now(UTC).isoformat()))
        return same

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def first_catalogued(self) -> str | None:
        """When the oldest row still in the catalog was written (ISO 8601), ``None`` when it is empty."""
        row = self._db.execute("SELECT min(updated_at) FROM documents").fetchone()
        return None if row is None or row[0] is None else str(row[0])


SqliteCatalog = Catalog  # the name callers knew when the catalog was SQLite only
