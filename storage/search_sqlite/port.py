"""The embedded index's adapters: ``SqliteSearchIndex`` (the ``storage.search_index.SearchIndex`` port: searches,
and writes of its own) and ``SqliteIndexWriter`` (the ``storage.catalog.IndexWriter`` the catalog writes a
document's index rows through, in the transaction of its catalog row).

One writer (a lock; ``BEGIN IMMEDIATE``, WAL), any number of readers: every thread that searches has its own
read connection, and one search runs in one read transaction (its total, hits and facets agree).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from schemas.document import SearchResult
from schemas.search import IndexEntry, SearchRequest
from storage.search_sqlite.bulk import PreparePool
from storage.search_sqlite.compaction import compact, optimize
from storage.search_sqlite.facets import FacetColumns
from storage.search_sqlite.query import Probes, run_search
from storage.search_sqlite.wordsets import common_words, write_wordsets
from storage.search_sqlite.write import clear, create_schema, delete_entries, write_entries
from storage.sqlite_tx import use_wal, write_transaction

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
    """Journal settings of a connection that writes the index (the catalog's too, when it writes index rows)."""
    use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")


class SqliteIndexWriter:
    """The embedded index as the catalog's ``IndexWriter``: a document's index rows are written on the catalog's
    connection, inside the transaction of its catalog row (a document is catalogued and searchable, or neither).
    Stateless but for the processes a rebuild prepares rows in (``bulk.PreparePool``): one object may serve any
    number of catalogs."""

    def __init__(self, processes: int | None = None) -> None:
        self._bulk = PreparePool(processes)

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Tune ``conn`` for index writes and create (or migrate) the index tables."""
        tune_writer(conn)
        create_schema(conn)

    def write(self, conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
        return write_entries(conn, entries)

    def write_all(self, conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> int:
        """``write`` for a rebuild's stream of documents: rows prepared in other processes (``PreparePool``),
        then the match sets of the most common words stored (``wordsets``)."""
        return _rebuild(conn, entries, self._bulk)

    def delete(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None:
        delete_entries(conn, ids)

    def clear(self, conn: sqlite3.Connection) -> None:
        clear(conn)

    def optimize(self, conn: sqlite3.Connection) -> None:
        optimize(conn)

    def compact(self, conn: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> int:
        return compact(conn, lock)


def _rebuild(conn: sqlite3.Connection, entries: Iterable[IndexEntry], bulk: PreparePool) -> int:
    """Write a rebuild's documents (inside the caller's transaction, the index cleared), then store the match
    sets of its most common words."""
    count = write_entries(conn, entries, bulk=bulk)
    write_wordsets(conn, common_words(conn))
    return count


class SqliteSearchIndex:
    """``SearchIndex`` on SQLite FTS5, in the database file ``path`` (the archive's catalog database)."""

    def __init__(self, path: Path, *, index_processes: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._bulk = PreparePool(index_processes)  # ``replace_all`` prepares rows in these processes
        self._lock = threading.Lock()
        self._conn = connect(path)
        create_schema(self._conn)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._columns = FacetColumns.for_file(path)  # facet values of every document, shared in this process

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
        write_transaction(self._conn, self._lock, action)

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        self._write(lambda: write_entries(self._conn, entries))

    def delete(self, ids: Sequence[str]) -> None:
        self._write(lambda: delete_entries(self._conn, ids))

    def replace_all(self, entries: Iterable[IndexEntry]) -> int:
        count = 0

        def run() -> None:
            nonlocal count
            clear(self._conn)
            count = _rebuild(self._conn, entries, self._bulk)

        self._write(run)
        with self._lock:
            optimize(self._conn)
        return count

    def search(self, request: SearchRequest) -> SearchResult:
        conn = self._reader()
        conn.execute("BEGIN")  # one snapshot: total, hits and facets agree while a writer commits
        try:
            return run_search(conn, request, self._local.probes, self._columns)
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
