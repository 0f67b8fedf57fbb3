"""The match sets of the most common words, stored in the index (``search_wordsets``), for facet counts.

``termsets.TermSets`` keeps the match set of a common word in memory once a search has read it from FTS5; the
first search with facets on that word in a process pays the read (a word in every document of a million pages:
~390,000 docids, ~40 ms CPU). So the index also stores the sets of its most common words, and ``TermSets`` starts
from the stored set instead (``stored``: a ~49 KB bitmap at 391,473 documents), reading from FTS5 only the
documents written since (``rowid > seen``: one range of the doclist).

Written by ``write_wordsets`` inside the caller's write transaction: by a rebuild (``write.write_entries`` with
``bulk``) after its documents, and by ``compaction.compact`` (the end of a digitisation run that merges the
index), which extends every stored set to the documents written since and adds the words that became common.
Which words: those a sample of ``SAMPLE_DOCS`` documents says are in at least ``termsets.MIN_CACHED`` documents
(at most ``MAX_WORDS``, the most common first); a word read and found in fewer is not stored. Each set is read
with the SQL a search runs for that word alone (``query._Match.kept``), so it holds what FTS5 would give.

Why a stored set stays exact: the reasoning of ``termsets`` (a docid matches an expression for ever; documents
written since have higher docids; a deleted document's bit stays, and the live mask leaves it out). A stored set
carries the generation it was read in (a rebuild drops it: ``write.clear``), the highest docid read (``seen``)
and the deletion count of that snapshot (``deleted``): a search on a snapshot with fewer deletions does not use it.
The sets hold documents of every secrecy level, like FTS5 itself; a count masks them by the caller's clearance
(``TermSets.serials``), so nothing above it is ever counted.
"""

from __future__ import annotations

import sqlite3
from collections import Counter

import numpy as np

import storage.search_sqlite.termsets as termsets
from schemas.text import fold_fast
from storage.search_sqlite.query import NO_PENDING, _Item, _Match
from storage.search_sqlite.schema import LEVEL_BITS
from storage.search_sqlite.termsets import _bits, matched_docids
from storage.search_sqlite.tokens import _ASCII_WORD

SAMPLE_DOCS = 2000  # documents whose words are counted to find the common ones
MAX_WORDS = 1024  # sets stored at most (~49 KB each at 391,473 documents)
LIKELY = 0.8  # a word is read if the sample puts it in at least this share of MIN_CACHED documents


def common_words(conn: sqlite3.Connection) -> list[str]:
    """The words a sample of the documents says are in at least ``MIN_CACHED`` of them (most common first), and
    the words stored already."""
    documents, last = conn.execute("SELECT count(*), ifnull(max(docid), 0) FROM search_docs").fetchone()
    stored = [str(r[0]) for r in conn.execute("SELECT word FROM search_wordsets ORDER BY word")]
    if documents < termsets.MIN_CACHED:
        return stored
    step = max(1, (int(last) >> LEVEL_BITS) // SAMPLE_DOCS)
    rows = conn.execute(f"SELECT t.text FROM search_docs d JOIN search_text t ON t.docid = d.docid "
                        f"WHERE (d.docid >> {LEVEL_BITS}) % ? = 0 LIMIT {SAMPLE_DOCS}", (step,)).fetchall()
    found: Counter[str] = Counter()
    for (text,) in rows:
        found.update(set(_ASCII_WORD.findall(fold_fast(text, is_nfc=True))))  # the words FTS5 takes as one
    wanted = LIKELY * termsets.MIN_CACHED * len(rows) / documents
    common = [w for w, n in found.most_common() if n >= wanted][:MAX_WORDS]
    return list(dict.fromkeys([*stored, *common]))


def write_wordsets(conn: sqlite3.Connection, words: list[str]) -> int:
    """Store the sets of ``words`` (inside the caller's write transaction): a stored one of this generation is
    extended to the documents written since it was read, the others read whole; a word in fewer than
    ``MIN_CACHED`` documents is not stored (and forgotten if it was). Returns the sets stored."""
    generation, deleted, top = conn.execute(
        "SELECT ifnull((SELECT value FROM meta WHERE key = 'search_generation'), ''), "
        "ifnull((SELECT value FROM meta WHERE key = 'search_deleted'), '0'), "
        "ifnull((SELECT max(docid) FROM search_docs), 0)").fetchone()
    pending = conn.execute("SELECT min(docid) FROM search_pairs_pending").fetchone()[0]
    size = (int(top) >> LEVEL_BITS) + 1
    kept = 0
    for word in words:
        item = _Item([word], [])
        key, above = _Match([item], NO_PENDING if pending is None else pending).kept()[0]
        row = conn.execute("SELECT seen, bits FROM search_wordsets WHERE item = ? AND generation = ?",
                           (key, generation)).fetchone()
        docids = matched_docids(conn, *above(0 if row is None else int(row[0])))
        if row is not None and not docids.size:  # nothing written since holds it: the stored set stands
            kept += 1
            continue
        bits = _bits(None if row is None else np.frombuffer(row[1], dtype=np.uint8), docids >> LEVEL_BITS, size)
        if int(np.unpackbits(bits).sum()) < termsets.MIN_CACHED:
            conn.execute("DELETE FROM search_wordsets WHERE item = ?", (key,))
            continue
        conn.execute("INSERT OR REPLACE INTO search_wordsets(item, word, generation, seen, deleted, bits) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (key, word, generation, int(top), int(deleted), bits.tobytes()))
        kept += 1
    conn.execute("DELETE FROM search_wordsets WHERE generation <> ?", (generation,))
    return kept
