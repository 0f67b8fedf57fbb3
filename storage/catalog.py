"""Embedded catalog: one SQLite database (WAL) under the archive, shared with the embedded search index.

The catalog row and the search index rows (``storage.search_sqlite``) of a document are written in ONE
transaction, so a document is either catalogued and searchable, or neither. The database is a cache of the
manifests in the object store and can be rebuilt from them. One writer at a time (a lock), any number of
readers; searches go through ``storage.search_sqlite.SqliteSearchIndex`` on the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from schemas.document import DocumentManifest
from schemas.metadata import DocumentMetadata
from schemas.search import IndexEntry
from schemas.text import fold
from storage import search_sqlite
from storage.search_index import entry_of

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


_COLUMNS = "id, sha256, source, batch, status, pages, metadata, review_reasons, manifest_key"
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
        review_reasons=json.loads(str(row[7])),
        manifest_key=str(row[8]),
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
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        search_sqlite.tune_writer(self._conn)
        self._claims: dict[tuple[str, ...], dict[str, str]] = {}
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
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._write(manifest, manifest_key)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def rebuild(self, documents: Iterable[tuple[DocumentManifest, str]]) -> int:
        """Replace every catalog and index row with ``documents`` (manifest, manifest key) in ONE transaction:
        readers see the old catalog until the new one is complete. Returns the number of documents."""
        count = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM documents")
                search_sqlite.clear(self._conn)
                pending: list[IndexEntry] = []
                for manifest, key in documents:
                    self._write_row(manifest, key)
                    pending.append(entry_of(manifest))
                    count += 1
                    if len(pending) >= 256:
                        search_sqlite.write_entries(self._conn, pending)
                        pending = []
                search_sqlite.write_entries(self._conn, pending)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            search_sqlite.optimize(self._conn)
        self._claims.clear()
        return count

    def compact_search(self) -> int:
        """Merge the search index's segments (``search_sqlite.compact``: small steps, so concurrent writers wait at
        most one); a digitisation run does it at its end. Returns the steps that did work."""
        return search_sqlite.compact(self._conn, self._lock)

    def _write(self, manifest: DocumentManifest, manifest_key: str) -> None:
        self._write_row(manifest, manifest_key)
        search_sqlite.write_entries(self._conn, [entry_of(manifest)])

    def _write_row(self, manifest: DocumentManifest, manifest_key: str) -> None:
        md = manifest.metadata.model_dump(mode="json", exclude={"evidence"})
        now = datetime.now(UTC).isoformat(timespec="seconds")
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
