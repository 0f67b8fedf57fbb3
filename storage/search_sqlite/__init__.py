"""Embedded search index on SQLite FTS5, in the archive's catalog database file.

Modules by job:

- ``schema``: the tables (what each holds, and why) and their DDL;
- ``tokens``: a document's folded columns, exact words and word-pair tokens;
- ``write``: creating (or migrating) the tables, and a document's rows, inside a caller's transaction;
- ``compaction``: merging FTS5 segments;
- ``query``: query planning, ranking (``run_search``);
- ``facets``: exact facet counts on a column store of every document's facet values (``FacetColumns``), or
  grouped in SQL;
- ``termsets``: the match sets of common words and phrases kept between searches, and the live mask of a
  snapshot, for facet counts without reading every match from FTS5 (``TermSets``);
- ``snippets``: snippets and highlights of hits;
- ``port``: the adapters ``SqliteSearchIndex`` (``storage.search_index.SearchIndex``: searches) and
  ``SqliteIndexWriter`` (``storage.catalog.IndexWriter``: a document's index rows in the catalog's transaction).

Tuning constants (``query.RANK_DF``, ``query.COUNT_EXACT``, ``write.PAIRS_BATCH``, ``compaction.COMPACT_STEP_PAGES``
...) live in the module that uses them; they are not re-exported here, so a test patches them where they are read.
"""

from storage.search_sqlite.compaction import compact, optimize, segment_counts, worth_compacting
from storage.search_sqlite.port import SqliteIndexWriter, SqliteSearchIndex, connect, tune_writer
from storage.search_sqlite.query import Probes, run_search
from storage.search_sqlite.schema import LAYOUT
from storage.search_sqlite.snippets import make_snippet
from storage.search_sqlite.tokens import DEAD_PAIR, pair_token
from storage.search_sqlite.write import clear, create_schema, delete_entries, write_entries

__all__ = [
    "DEAD_PAIR",
    "LAYOUT",
    "Probes",
    "SqliteIndexWriter",
    "SqliteSearchIndex",
    "clear",
    "compact",
    "connect",
    "create_schema",
    "delete_entries",
    "make_snippet",
    "optimize",
    "pair_token",
    "run_search",
    "segment_counts",
    "tune_writer",
    "worth_compacting",
    "write_entries",
]
