"""The match sets of common terms, kept between searches, for facet counts (``TermSets``).

Counting the facets of a query of very common words costs little once its matches are known; reading them from
FTS5 is what costs (a word in every document of a million pages: ~390,000 docids, ~40–60 ms CPU). So the set of
documents holding a common item of a query (a word, or a phrase of ASCII words; keyed by the expression FTS5 is
given, ``_Item.match``, and read with the SQL the search itself would run for that item alone: a phrase on its
pairs, the pending documents on its words) is kept as a bitmap over serials (``docid >> LEVEL_BITS``), one bit a
document, and a query whose items are all such is counted on the intersection of its items' sets, masked by the
documents live at the search's snapshot and visible at its clearance (browsing, no item: the mask alone). FTS5's
``a AND b`` is the intersection of what ``a`` and ``b`` match, so the documents are those FTS5 would give.

Why a kept set stays exact (the reasoning of ``facets``): a docid is given once and its FTS rows never change (an
update is a delete and an insert under a new docid), so whether a docid matches an expression is true for ever;
the documents written since a set was read have docids above what it read (``seen``) and are read on demand
(``rowid > seen``: one range of each doclist); a deleted document's bit stays, but the live mask (the docids of
``search_docs`` at the search's snapshot, with their levels) leaves it out. One trap: a range read at a snapshot
lacks a document deleted before that snapshot, which a search on an OLDER snapshot (fewer deletions) still sees;
so each set keeps the deletion count (``meta.search_deleted``, only grows in a generation) of the newest snapshot
it was read at, and a search whose snapshot counts fewer deletions does not use it (it reads FTS5). Documents
written after a snapshot have docids above its highest one, so a newer snapshot never lacks them. A rebuild
(a new generation) drops everything.

Bounded: only items in at least ``MIN_CACHED`` documents are kept, at most ``CACHE_BYTES`` of bitmaps per
database file (least recently used dropped first; ~49 KB a set at 391,473 documents: 64 MiB hold ~1,300).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from storage.search_sqlite.schema import LEVEL_BITS, LEVEL_MASK, MAX_LEVEL

if TYPE_CHECKING:
    from storage.search_sqlite.facets import _State

MIN_CACHED = 20_000  # documents an item must be found in for its set to be kept
CACHE_BYTES = 64 << 20  # bitmaps kept per database file
MAX_ITEMS = 4  # a longer query reads its matches from FTS5 (an AND of many words is rarely common)
LIVE_KEPT = 4  # live masks kept (one per snapshot: deletion count and highest docid)
SMALL_KEPT = 50_000  # items remembered as below MIN_CACHED (forgotten all at once beyond)


Item = tuple[str, Callable[[int], tuple[str, list[object]]]]  # an expression, and the SQL of its matches above a docid


@dataclass(frozen=True)
class _TermSet:
    bits: np.ndarray  # packed (little bit order): bit n = serial n's document matches
    seen: int  # every docid up to this one has been read
    deleted: int  # the deletion count of the newest snapshot read at (see the module's docstring)


@dataclass(frozen=True)
class _Live:
    levels: np.ndarray  # int8 by serial: the level of the live document, -1 for none
    top: int  # the highest docid of the snapshot


def matched_docids(conn: sqlite3.Connection, rowids_sql: str, args: Sequence[object]) -> np.ndarray:
    """The docids ``rowids_sql`` selects (its column ``rowid``), in one statement and one string parsed by numpy:
    a row per match through Python's sqlite3 costs ~4x more (400,000 matches: ~170 ms against ~40 ms)."""
    text = conn.execute(f"SELECT group_concat(rowid) FROM ({rowids_sql})", list(args)).fetchone()[0]
    if not text:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _stored(conn: sqlite3.Connection, generation: str, item: str, deleted: int) -> _TermSet | None:
    """``item``'s set as the index stores it (``wordsets``), if it is of this generation, was read at a snapshot
    with no more deletions than this one (see the module's docstring) and has a bit for every serial up to the
    highest docid it says it read; ``None`` otherwise."""
    try:
        row = conn.execute("SELECT seen, deleted, bits FROM search_wordsets WHERE item = ? AND generation = ?",
                           (item, generation)).fetchone()
    except sqlite3.OperationalError:  # an index written before the table was (a reader never creates it)
        return None
    if row is None or int(row[1]) > deleted:
        return None
    seen, bits = int(row[0]), row[2]
    if not isinstance(bits, bytes) or 8 * len(bits) <= seen >> LEVEL_BITS:  # a damaged row: read FTS5 instead
        return None
    return _TermSet(bits=np.frombuffer(bits, dtype=np.uint8), seen=seen, deleted=int(row[1]))


def _deleted(value: str) -> int:
    return int(value) if value else 0


def _bits(old: np.ndarray | None, serials: np.ndarray, size: int) -> np.ndarray:
    """A packed bitmap of ``size`` bits (at least): ``old``'s bits and ``serials``'s."""
    size = max(size, int(serials.max()) + 1 if serials.size else 0, 8 * (0 if old is None else old.shape[0]))
    mask = np.zeros(size, dtype=bool) if old is None else np.unpackbits(old, count=size, bitorder="little").view(bool)
    mask[serials] = True
    return np.packbits(mask, bitorder="little")


class TermSets:
    """The kept sets and live masks of one database file (held by its ``FacetColumns``), shared by threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._terms: OrderedDict[str, _TermSet] = OrderedDict()
        self._bytes = 0
        self._small: set[str] = set()
        self._live: OrderedDict[tuple[int, int], _Live] = OrderedDict()

    def held(self) -> tuple[int, int]:
        """How many sets are kept, and their bytes."""
        with self._lock:
            return len(self._terms), self._bytes

    def serials(self, conn: sqlite3.Connection, state: _State, snapshot: tuple[str, ...], items: Sequence[Item],
                clearance: int) -> np.ndarray | None:
        """The serials of the documents matching every one of ``items`` (each: its FTS5 expression, and the SQL
        of its matches above a docid; none: every document), live at ``conn``'s snapshot (``snapshot``: see
        ``FacetColumns.current``; ``state`` holds every document of it) and at most at ``clearance``; ``None``
        when the kept sets cannot say it (the caller reads its matches from FTS5)."""
        generation, deleted, top = snapshot[0], _deleted(snapshot[2]), int(snapshot[3])
        if len(items) > MAX_ITEMS or generation != state.generation:
            return None
        with self._lock:
            if self._generation != generation:
                self._generation, self._terms, self._bytes, self._small, self._live = (
                    generation, OrderedDict(), 0, set(), OrderedDict())
            found = [self._terms.get(key) for key, _ in items]
            if items and all(f is None for f in found) and all(key in self._small for key, _ in items):
                return None  # only rare items: FTS5's AND is as cheap
            if any(f is not None and f.deleted > deleted for f in found):
                return None  # kept at a newer snapshot than this one (see the module's docstring)
        live = self._live_at(conn, state, generation, deleted, top)
        if live is None:
            return None
        mask = live.levels >= 0
        if clearance < MAX_LEVEL:
            mask &= live.levels <= clearance
        size = mask.shape[0]
        for (key, rowids), kept in zip(items, found, strict=True):
            bits = self._read(conn, state, key, rowids, kept, deleted, top)
            if bits is None:
                return None
            mask &= np.unpackbits(bits, count=size, bitorder="little").view(bool)
        counted = np.flatnonzero(mask)
        # counted on ``state``'s values: each must be there under its docid (arrays read again from scratch, for
        # a newer snapshot, lack a document deleted since that a live mask kept from before holds)
        if counted.size and (int(counted[-1]) >= state.capacity() or not np.array_equal(
                state.docids[counted], (counted << LEVEL_BITS) | live.levels[counted].astype(np.int64))):
            return None
        return counted

    def _read(self, conn: sqlite3.Connection, state: _State, item: str,
              rowids: Callable[[int], tuple[str, list[object]]], kept: _TermSet | None, deleted: int, top: int
              ) -> np.ndarray | None:
        """The bits of ``item`` up to ``top`` at least (read from FTS5 above what ``kept`` holds), kept if common;
        ``None`` if ``state`` does not hold one of the documents read (each is counted at the level, and on the
        values, of its own docid: a catalog file copied back in place and written on gives its serials to other
        documents, possibly of a higher level than the live mask and the arrays hold for them)."""
        generation, size = state.generation, state.capacity()
        if kept is None and item not in self._small:  # a word known to be in few documents is never stored
            kept = _stored(conn, generation, item, deleted)
            if kept is not None and kept.seen >= top:
                self._keep(generation, item, kept)
                return kept.bits
        if kept is not None and kept.seen >= top:
            with self._lock:
                if self._terms.get(item) is kept:
                    self._terms.move_to_end(item)
            return kept.bits
        since = 0 if kept is None else kept.seen
        docids = matched_docids(conn, *rowids(since))
        serials = docids >> LEVEL_BITS
        if serials.size and (int(serials.max()) >= size or not np.array_equal(state.docids[serials], docids)):
            return None
        bits = _bits(None if kept is None else kept.bits, serials, size)
        if kept is None and docids.size < MIN_CACHED:
            with self._lock:
                if self._generation == generation:
                    if len(self._small) >= SMALL_KEPT:
                        self._small.clear()
                    self._small.add(item)
            return bits
        self._keep(generation, item, _TermSet(bits=bits, seen=top, deleted=deleted))
        return bits

    def _keep(self, generation: str, item: str, fresh: _TermSet) -> None:
        """Keep ``fresh`` as ``item``'s set (unless a rebuild was seen meanwhile, or a newer one is kept)."""
        with self._lock:
            if self._generation != generation:
                return
            self._small.discard(item)
            old = self._terms.get(item)
            if old is None or old.seen < fresh.seen:
                self._bytes += fresh.bits.nbytes - (0 if old is None else old.bits.nbytes)
                self._terms[item] = fresh
            self._terms.move_to_end(item)
            while self._bytes > CACHE_BYTES and self._terms:
                _, dropped = self._terms.popitem(last=False)
                self._bytes -= dropped.bits.nbytes

    def _live_at(self, conn: sqlite3.Connection, state: _State, generation: str, deleted: int, top: int
                 ) -> _Live | None:
        """The live mask of the snapshot whose deletion count is ``deleted`` and highest docid ``top``: kept, or
        one of the same deletion count extended (documents written since) or cut (an older snapshot), or read
        whole; ``None`` if ``state`` does not hold one of its documents."""
        with self._lock:
            if self._generation != generation:
                return None
            live = self._live.get((deleted, top))
            if live is not None:
                self._live.move_to_end((deleted, top))
                return live
            same = [v for (d, _), v in self._live.items() if d == deleted]
        size = state.capacity()
        levels = np.full(size, -1, dtype=np.int8)
        base = max(same, key=lambda v: v.top) if same else None
        if base is not None:  # no deletion between the two snapshots: the same documents, plus or minus the newest
            keep = min(base.levels.shape[0], size, (min(base.top, top) >> LEVEL_BITS) + 1)
            levels[:keep] = base.levels[:keep]
        since = base.top if base is not None and base.top < top else (top if base is not None else 0)
        docids = matched_docids(conn, "SELECT docid AS rowid FROM search_docs WHERE docid > ?", [since])
        serials = docids >> LEVEL_BITS
        if serials.size and (int(serials.max()) >= size or not np.array_equal(state.docids[serials], docids)):
            return None
        levels[serials] = (docids & LEVEL_MASK).astype(np.int8)
        live = _Live(levels=levels, top=top)
        with self._lock:
            if self._generation != generation:  # a rebuild was seen meanwhile: not kept among the new ones
                return live
            self._live[(deleted, top)] = live
            while len(self._live) > LIVE_KEPT:
                self._live.popitem(last=False)
        return live
