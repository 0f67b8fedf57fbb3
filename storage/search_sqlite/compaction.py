"""Merging the embedded index's FTS5 segments: after a rebuild (``optimize``) and at the end of a digitisation run
(``compact``, in small steps of their own)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from functools import partial

from storage.search_sqlite.schema import FTS_TABLES
from storage.search_sqlite.wordsets import common_words, write_wordsets
from storage.search_sqlite.write import flush_pairs

COMPACT_STEP_PAGES = 2000  # FTS5 leaf pages merged per transaction by ``compact`` (tens of milliseconds each)
COMPACT_ALWAYS_UP_TO = 20_000  # documents: below this a merge costs at most a few seconds, done after every run
COMPACT_MIN_SHARE = 0.02  # above it, a run merges when it added this share of the index's documents (a merge
# rewrites the whole index: a run of a few documents into a large archive leaves FTS5's own merging to it)
WORDSETS_STEP = 64  # common words whose stored match sets are extended per transaction (``wordsets``)


def worth_compacting(documents: int, added: int) -> bool:
    """Whether a run that added ``added`` of the index's ``documents`` should merge its segments (``compact``)."""
    return added > 0 and (documents <= COMPACT_ALWAYS_UP_TO or added >= COMPACT_MIN_SHARE * documents)


def compact(conn: sqlite3.Connection, lock: threading.Lock | threading.RLock) -> int:
    """Merge each FTS index into one segment in small steps (``COMPACT_STEP_PAGES`` leaf pages, each its own
    transaction taken under ``lock``), so other writers wait at most one step; searches of a merged index read
    one doclist per word instead of one per segment (about 1.3x more searches/s at 100,000 pages). Writes the
    pending pairs first, and extends the stored match sets of the common words last (``wordsets``). Call with no
    transaction open. Returns the number of merge steps that did work."""
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

    step(lambda: flush_pairs(conn, at_least=1))
    steps = 0
    for table in FTS_TABLES:
        sql = f"INSERT INTO {table}({table}, rank) VALUES ('merge', ?)"
        worked = step(partial(conn.execute, sql, (-COMPACT_STEP_PAGES,)))  # negative: start merging all into one
        while worked:
            steps += 1
            worked = step(partial(conn.execute, sql, (COMPACT_STEP_PAGES,)))
    words = common_words(conn)
    for start in range(0, len(words), WORDSETS_STEP):  # the common words' sets, extended (see ``wordsets``)
        step(partial(write_wordsets, conn, words[start:start + WORDSETS_STEP]))
    return steps


def segment_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Segments of each FTS index (1 once compacted; 0 when empty)."""
    return {table: int(conn.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone()[0])
            for table in FTS_TABLES}


def optimize(conn: sqlite3.Connection) -> None:
    """Write the pending pairs, and merge each FTS index into one segment (after a rebuild: fewer segments,
    faster queries)."""
    flush_pairs(conn, at_least=1)
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    conn.execute("INSERT INTO search_head(search_head) VALUES ('optimize')")
    conn.execute("INSERT INTO search_pairs(search_pairs) VALUES ('optimize')")

