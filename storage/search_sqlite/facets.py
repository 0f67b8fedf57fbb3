"""Facet counts of the embedded index: exact, over every visible match, from a compact column store.

Grouping the matches in SQL joins every match to its ``search_docs`` row (a b-tree lookup each): for a common
word at a million pages that is hundreds of thousands of lookups, ~0.5 s. Instead each index object keeps
``FacetColumns``: for every document, by its serial (``docid >> LEVEL_BITS``), its facet values as small integer
codes (and its year and date, for the filters), in numpy arrays (~37 bytes a document). A search reads the
docids of its matches from FTS5 in one statement (clearance applied there, on the docid itself), applies the
filters and counts every facet on the arrays (``np.bincount``): the counts are exact, over the matches at the
search's snapshot, and never include a document above the caller's clearance.

Why the arrays stay right without being told of writes: a ``search_docs`` row never changes (a document is
updated by deleting its rows and writing new ones under a new docid), and a docid is never given twice
(``write`` keeps the highest serial ever given in ``meta``). So the values held for a docid are its values for
ever; the docids of documents written since the arrays were read are above the highest one read
(``_State.loaded``) and are read before counting (one indexed range scan); a deleted document's entry stays, but
no search matches it any more. ``clear`` (a rebuild) bumps the index's generation in ``meta``: the arrays are
read again, to let the old documents' entries go. A match the arrays do not hold (a search on a snapshot older
than the arrays' generation) falls back to grouping in SQL (``sql_facets``): slower, never wrong.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from schemas.search import FACET_FIELDS, FacetCount, SearchFilters
from schemas.text import nfc
from storage.search_sqlite.schema import LEVEL_BITS
from storage.search_sqlite.termsets import TermSets, matched_docids

__all__ = ["FacetColumns", "count_facets", "count_serials", "empty_facets", "matched_docids", "sql_facets"]

FACET_VALUES = 100  # values per facet, most frequent first
CODED = ("type_name", "organ_name", "classification", "batch", "file_code")  # text columns, as codes
_NONE = -1  # code of NULL; year and day use it too (a NULL never passes a range filter)
GROWTH = 1.5  # the arrays grow by this factor when a serial does not fit
RESULTS_KEPT = 256  # counts of recent requests kept per file (the web page asks again for every page of hits)


@dataclass
class _State:
    """The arrays of one generation. Appended in place under ``FacetColumns._lock`` (only past ``loaded``, which
    no reader looks at); replaced whole when they must grow, so a reader holding the old one reads on safely."""

    generation: str
    loaded: int = 0  # the highest docid read
    # the docid read for each serial (-1: none): a match is counted only on the values of its own docid, its level
    # in it (a serial given again, by a catalog file brought back in place from a copy, is never another's)
    docids: np.ndarray = field(default_factory=lambda: np.full(0, -1, dtype=np.int64))
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # CODED + "year" + "day": int32 by serial
    values: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CODED})  # code -> value
    codes: dict[str, dict[str, int]] = field(default_factory=lambda: {c: {} for c in CODED})  # value -> code

    def capacity(self) -> int:
        return int(self.docids.shape[0])


def _day(issued: str | None) -> int:
    """``issued_date`` as an integer ordered like the text SQL compares: ``YYYYMMDD * 2``, plus one when the text
    goes on after the date (``'2020-01-05T…' > '2020-01-05'``); ``_NONE`` for NULL."""
    if not issued:
        return _NONE
    return int(issued[:4] + issued[5:7] + issued[8:10]) * 2 + (1 if len(issued) > 10 else 0)


class FacetColumns:
    """The column store of one database file, shared by every index object on it in this process (the web app
    opens one per request) and their reader threads (see the module's docstring). ``for_file`` gives it."""

    _registry: ClassVar[OrderedDict[tuple[int, int], FacetColumns]] = OrderedDict()
    _registry_lock = threading.Lock()
    KEEP = 8  # files whose arrays are kept (the least recently opened is dropped)

    def __init__(self, load_after: int = 1) -> None:
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._unread = load_after  # requests counted in SQL before the arrays are read (see ``current``)
        self._results_lock = threading.Lock()
        self._results: OrderedDict[tuple[object, ...], tuple[int, dict[str, list[FacetCount]]]] = OrderedDict()
        self.terms = TermSets()  # the match sets of common words (``termsets``)

    def cached(self, key: tuple[object, ...]) -> tuple[int, dict[str, list[FacetCount]]] | None:
        """The counts of an identical request on an identical index (``key``: see ``query._facets``)."""
        with self._results_lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
        return None if found is None else (found[0], {name: list(v) for name, v in found[1].items()})

    def remember(self, key: tuple[object, ...], counted: tuple[int, dict[str, list[FacetCount]]]) -> None:
        with self._results_lock:
            self._results[key] = (counted[0], {name: list(v) for name, v in counted[1].items()})
            while len(self._results) > RESULTS_KEPT:
                self._results.popitem(last=False)

    @classmethod
    def for_file(cls, path: Path) -> FacetColumns:
        """The column store of the database file at ``path`` (by device and inode: a file replaced by another
        at the same path gets its own)."""
        info = path.stat()
        key = (info.st_dev, info.st_ino)
        with cls._registry_lock:
            columns = cls._registry.pop(key, None) or cls()
            cls._registry[key] = columns
            while len(cls._registry) > cls.KEEP:
                cls._registry.popitem(last=False)
            return columns

    def current(self, conn: sqlite3.Connection) -> tuple[_State | None, tuple[str, ...] | None]:
        """The arrays, holding every document of ``conn``'s snapshot (call inside its read transaction), and
        what identifies the snapshot's documents (``None`` if nothing does): its generation, the last serial
        given, the count of deletions and the highest docid; every write changes one of them (``write``).

        No arrays (``None``) for the first ``load_after`` requests on a file in this process: reading them costs
        about 4 µs a document (~1.5 s at a million pages), more than one request counted in SQL; a process that
        searches once (the CLI) never reads them, the web app does at its second request with facets."""
        generation, top, given, deleted = conn.execute(
            "SELECT ifnull((SELECT value FROM meta WHERE key = 'search_generation'), ''), "
            "ifnull((SELECT max(docid) FROM search_docs), 0), "
            "ifnull((SELECT value FROM meta WHERE key = 'search_serial'), ''), "
            "ifnull((SELECT value FROM meta WHERE key = 'search_deleted'), '')").fetchone()
        snapshot = (str(generation), str(given), str(deleted), str(top)) if generation else None
        state = self._state
        if state is not None and state.generation == generation and state.loaded >= top:
            return state, snapshot
        with self._lock:
            if self._state is None and self._unread > 0:
                self._unread -= 1
                return None, snapshot
            state = self._state
            if state is None or state.generation != generation or not generation:
                state = _State(generation=str(generation))
            if state.loaded < top:
                state = _load(conn, state)
            self._state = state
            return state, snapshot


def _load(conn: sqlite3.Connection, state: _State) -> _State:
    """Read the documents above ``state.loaded`` into its arrays (grown, as a new ``_State``, if need be)."""
    rows = conn.execute("SELECT docid, type_name, organ_name, classification, batch, file_code, year, issued_date "
                        "FROM search_docs WHERE docid > ? ORDER BY docid", (state.loaded,)).fetchall()
    if not rows:
        return state
    top = int(rows[-1][0])
    need = (top >> LEVEL_BITS) + 1
    if need > state.capacity():
        size = max(need, int(state.capacity() * GROWTH), 1024)
        grown = _State(generation=state.generation, loaded=state.loaded, values=state.values, codes=state.codes)
        grown.docids = np.full(size, -1, dtype=np.int64)
        grown.docids[:state.capacity()] = state.docids
        for name in (*CODED, "year", "day"):
            column = np.full(size, _NONE, dtype=np.int32)
            if name in state.columns:
                column[:state.capacity()] = state.columns[name]
            grown.columns[name] = column
        state = grown
    serials = np.fromiter((int(r[0]) >> LEVEL_BITS for r in rows), dtype=np.int64, count=len(rows))
    for n, name in enumerate(CODED, start=1):
        codes, values = state.codes[name], state.values[name]
        coded: list[int] = []
        for row in rows:
            value = row[n]
            if value is None:
                coded.append(_NONE)
                continue
            code = codes.get(value)
            if code is None:
                code = codes[value] = len(values)
                values.append(value)
            coded.append(code)
        state.columns[name][serials] = coded
    state.columns["year"][serials] = [_NONE if r[6] is None else int(r[6]) for r in rows]
    state.columns["day"][serials] = [_day(r[7]) for r in rows]
    state.docids[serials] = [int(r[0]) for r in rows]
    state.loaded = top
    return state


def count_facets(state: _State, docids: np.ndarray, filters: SearchFilters
                 ) -> tuple[int, dict[str, list[FacetCount]]] | None:
    """The number of ``docids`` passing ``filters`` and every facet's value counts over them; ``None`` when the
    arrays do not hold one of them (the caller counts in SQL)."""
    serials = docids >> LEVEL_BITS
    if serials.size and (int(serials.max()) >= state.capacity() or not np.array_equal(state.docids[serials], docids)):
        return None
    return count_serials(state, serials, filters)


def count_serials(state: _State, serials: np.ndarray, filters: SearchFilters
                  ) -> tuple[int, dict[str, list[FacetCount]]]:
    """``count_facets`` over documents given by serial (every one held by ``state``)."""
    if _filtered(filters):
        serials = serials[_passing(state, serials, filters)]
    out: dict[str, list[FacetCount]] = {}
    for name in FACET_FIELDS:
        column = state.columns["year" if name == "year" else name][serials]
        column = column[column != _NONE]
        if name == "year":
            pairs = _year_counts(column)
        else:
            names = state.values[name]
            tally = np.bincount(column, minlength=len(names)) if column.size else np.zeros(0, dtype=np.int64)
            pairs = [(names[i], int(tally[i])) for i in np.flatnonzero(tally)]
        pairs.sort(key=lambda vc: (-vc[1], vc[0]))
        out[name] = [FacetCount(value=v, count=c) for v, c in pairs[:FACET_VALUES]]
    return int(serials.size), out


def _year_counts(years: np.ndarray) -> list[tuple[str, int]]:
    """Value counts of ``years`` (no ``_NONE``): a tally when they span little (no sort), else ``np.unique``."""
    if not years.size:
        return []
    low, high = int(years.min()), int(years.max())
    if high - low < 100_000:
        tally = np.bincount(years - low)
        return [(str(int(i) + low), int(tally[i])) for i in np.flatnonzero(tally)]
    found, counts = np.unique(years, return_counts=True)
    return [(str(int(v)), int(c)) for v, c in zip(found, counts, strict=True)]


def _filtered(filters: SearchFilters) -> bool:
    return any(getattr(filters, name) for name in CODED) or any(
        v is not None for v in (filters.year_from, filters.year_to, filters.date_from, filters.date_to))


def _passing(state: _State, serials: np.ndarray, filters: SearchFilters) -> np.ndarray:
    """A mask over ``serials``: the documents passing ``filters`` (the same conditions as ``query._filter_sql``)."""
    keep = np.ones(serials.shape[0], dtype=bool)
    for name in CODED:
        wanted: list[str] = getattr(filters, name)
        if wanted:
            codes = [state.codes[name][v] for v in map(nfc, wanted) if v in state.codes[name]]
            keep &= np.isin(state.columns[name][serials], np.asarray(codes, dtype=np.int32))
    year, day = state.columns["year"][serials], state.columns["day"][serials]
    if filters.year_from is not None:
        keep &= (year != _NONE) & (year >= filters.year_from)
    if filters.year_to is not None:
        keep &= (year != _NONE) & (year <= filters.year_to)
    if filters.date_from is not None:
        keep &= (day != _NONE) & (day >= _day(filters.date_from.isoformat()))
    if filters.date_to is not None:
        keep &= (day != _NONE) & (day <= _day(filters.date_to.isoformat()))
    return keep


def empty_facets() -> dict[str, list[FacetCount]]:
    return {name: [] for name in FACET_FIELDS}


_SQL_COLUMNS = {"type_name": "type_name", "year": "year", "organ_name": "organ_name",
                "classification": "classification", "batch": "batch", "file_code": "file_code"}


def sql_facets(conn: sqlite3.Connection, source: str, args: list[object]) -> tuple[int, dict[str, list[FacetCount]]]:
    """The number of documents ``FROM source`` selects (``search_docs d``) and the value counts of every facet
    over all of them, grouped in SQL: one statement, the matches materialised once and grouped per facet."""
    groups = " UNION ALL ".join(
        f"SELECT {n} AS n, {column} AS v, count(*) AS c FROM m WHERE {column} IS NOT NULL GROUP BY {column}"
        for n, column in enumerate(_SQL_COLUMNS[name] for name in FACET_FIELDS))
    total, rows = conn.execute(
        "WITH m AS MATERIALIZED (SELECT d.type_name, d.year, d.organ_name, d.classification, d.batch, "
        f"d.file_code FROM {source}) SELECT (SELECT count(*) FROM m), "
        f"(SELECT json_group_array(json_array(n, v, c)) FROM ({groups}))", args).fetchone()
    out: dict[str, list[tuple[str, int]]] = {name: [] for name in FACET_FIELDS}
    for n, value, count in json.loads(rows):
        out[FACET_FIELDS[n]].append((str(value), int(count)))
    return int(total), {name: [FacetCount(value=v, count=c) for v, c in sorted(values, key=lambda vc: (-vc[1], vc[0]))
                               [:FACET_VALUES]] for name, values in out.items()}
