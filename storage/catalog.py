"""Embedded catalog and full-text index: one SQLite database (WAL) under the archive.

The catalog row and the index rows of a document are written in ONE transaction, so a document is either
catalogued and searchable, or neither. The database is a cache of the manifests in the object store and can
be rebuilt from them. One writer at a time (a lock), any number of readers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from schemas.document import DocumentManifest, SearchResult
from schemas.query import ParsedQuery
from storage import search_sqlite

SCHEMA_VERSION = 1

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


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    sha256: str
    source: str
    batch: str
    status: str
    pages: int
    metadata: dict[str, object]
    review_reasons: list[str]
    manifest_key: str


class SqliteCatalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            search_sqlite.create_schema(self._conn)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def commit_document(self, manifest: DocumentManifest, manifest_key: str) -> None:
        """Catalogue and index a stored document atomically (replacing any earlier rows of the same id)."""
        md = manifest.metadata.model_dump(mode="json", exclude={"evidence"})
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        manifest.id,
                        manifest.sha256,
                        manifest.source,
                        manifest.batch,
                        manifest.status,
                        len(manifest.pages),
                        json.dumps(md, ensure_ascii=False),
                        json.dumps(manifest.review_reasons, ensure_ascii=False),
                        manifest_key,
                        now,
                    ),
                )
                search_sqlite.index_document(self._conn, manifest)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def get(self, doc_id: str) -> CatalogEntry | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, sha256, source, batch, status, pages, metadata, review_reasons, manifest_key "
                "FROM documents WHERE id = ?",
                (doc_id,),
            ).fetchone()
        if row is None:
            return None
        return CatalogEntry(
            id=row[0],
            sha256=row[1],
            source=row[2],
            batch=row[3],
            status=row[4],
            pages=row[5],
            metadata=json.loads(row[6]),
            review_reasons=json.loads(row[7]),
            manifest_key=row[8],
        )

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def search(self, query: ParsedQuery, *, limit: int = 10, offset: int = 0) -> SearchResult:
        with self._lock:
            return search_sqlite.search(self._conn, query, limit=limit, offset=offset)
