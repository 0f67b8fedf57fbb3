"""Query planning and ranking on the embedded index (``run_search``).

Matching: every item of the query (word or phrase) in any folded column (AND, no OR fallback: the contract's
semantics), so an unaccented query finds everything its accented twin finds. Filters are conditions on
``search_docs`` joined to the matches; ``date_desc``/``date_asc`` sort the matches on the date index. Ranking
(relevance):

1. documents whose số/ký hiệu the query looks up (``ParsedQuery.codes``: an indexed lookup on ``code_key``:
   ``15-NQ/TU``, ``15-NQ``, ``NQ/TU 15``, ``Số 15-NQ/TU``), above documents that only cite it;
2. then bm25 (``WEIGHTS``: code 10, title 4, body 1, exact 8), with one phrase per column for each item (bm25
   saturates each column apart, like a per-field BM25: naming the words in the heading AND the text beats
   naming them once) and the query's accented words as optional phrases on ``exact`` (an exact word implies
   its folded one: the same documents match, those holding the user's exact words score higher).

FTS5's bm25 reads the whole doclist of every phrase it scores (its idf), so it is only used over items found in
at most ``RANK_DF`` documents (a probe: is there a ``RANK_DF``-th match?); items found in more only filter.
bm25 over a phrase reads the positions of every document holding its words (``59-NQ/VPTU``: those of ``nq``,
``vptu``; ~7 ms at a million pages, ~0.1 ms on its pairs): a query of phrases on the pairs (``_Match.pairs``: a
number, a quoted phrase) is ranked in tiers, as common items are. When every item is common,
bm25 cannot rank cheaply (and barely can: its idf is near zero): the documents
whose heading (``search_head``) holds every item with the user's exact diacritics come first, then those whose
heading holds every item, then the other matches, each tier most recently indexed first; and the total is
counted exactly up to ``COUNT_EXACT``, estimated above it (two significant digits) unless facets were asked for
(they count every match); for a caller who may not see every level it is estimated over the documents they see
only (``_visible_share``: classified documents leave gaps in the docid range that would show). A query of
phrases is matched on ``search_pairs`` (see ``schema``); a phrase next to a plain word, or with a word FTS5 may split
differently (not ASCII letters and digits), is matched on the words: then a phrase of common words found in few
documents costs a pass over every document holding all its words (FTS5 compares positions row by row).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from itertools import pairwise

from schemas.document import SearchResult
from schemas.query import ParsedQuery, parse_query
from schemas.search import FacetCount, SearchRequest
from schemas.text import fold_fast, nfc
from storage.search_sqlite.facets import (
    FacetColumns,
    count_facets,
    count_serials,
    empty_facets,
    matched_docids,
    sql_facets,
)
from storage.search_sqlite.schema import LEVEL_MASK, MAX_LEVEL
from storage.search_sqlite.snippets import _fetch_hits, _phrase_pattern
from storage.search_sqlite.tokens import _ASCII_WORD, _LENGTHS, pair_token

WEIGHTS = (10.0, 4.0, 1.0, 8.0)  # search_fts: code, title, body, exact
BM25 = "bm25(search_fts, " + ", ".join(map(str, WEIGHTS)) + ")"
RANK_DF = 2000  # bm25 scores an item only if at most this many visible documents hold it
HEAD_K = 200  # common items: the most documents a heading tier lists before the other matches
COUNT_EXACT = 1000  # every item common: matches counted up to this, estimated above it (like a search engine)
MAX_CODE_TIER = 50  # documents with the số/ký hiệu a query looks up, ranked first
CODE_TIER_BONUS = 1000.0  # added to the score of a document whose số/ký hiệu the query looks up
_SORT_SQL = {
    "date_desc": "ifnull(d.issued_date, '') DESC, d.id",
    "date_asc": "ifnull(d.issued_date, '~'), d.id",
}


_FOLDED = "{code title body} : "


def _quoted(words: Sequence[str]) -> str:
    return '"' + " ".join(w.replace('"', "") for w in words) + '"'


def _plain(word: str) -> bool:
    """Whether ``word`` is one FTS5 token of ASCII letters and digits (matched without a column filter)."""
    return _ASCII_WORD.fullmatch(word) is not None


class _Item:
    """One thing the query asks for (a term or a phrase). ``match``: it, in any folded column. ``pairs``: a phrase
    of ASCII words as the phrase of its pair tokens on ``search_pairs`` (the same documents), or ``None``.
    ``ranked`` (on ``search_fts``): one phrase per column, plus the exact (accented) forms of a term on
    ``exact``: an exact word implies its folded term, so it matches the same documents as ``match`` and only
    adds to the bm25 score. ``head`` / ``head_exact`` (on ``search_head``): it in the heading / with the user's
    exact diacritics."""

    def __init__(self, words: Sequence[str], exact: Sequence[str]) -> None:
        phrase = _quoted(words)
        # ``exact`` holds only words with diacritics: one FTS5 token of ASCII letters and digits can only match
        # the folded columns (where its text is), and FTS5 scans faster without a column filter; not a phrase
        # (nor a word FTS5 splits, ``abc_abd``): FTS5 splits an exact word at ``_`` and its kind, and the sorted
        # exact words can put two ASCII words side by side (``aaa_đê_abc``, ``abd_đê``: "abc abd") that never are
        # in the text, nor in the pairs (code, title, body)
        self.match = phrase if len(words) == 1 and _plain(words[0]) else _FOLDED + phrase
        paired = len(words) > 1 and all(_ASCII_WORD.fullmatch(w) and len(w) in _LENGTHS for w in words)
        self.pairs = _quoted([pair_token(a, b) for a, b in pairwise(words)]) if paired else None
        self.words = [_quoted([w]) if _plain(w) else _FOLDED + _quoted([w]) for w in dict.fromkeys(words)]
        exact_alternatives = [f"{{exact}} : {_quoted([e])}" for e in exact]
        self.ranked = "(" + " OR ".join([f"{{{c}}} : {phrase}" for c in ("code", "title", "body")]
                                        + exact_alternatives) + ")"
        self.head = "{code title} : " + phrase
        self.head_exact = "(" + " OR ".join(exact_alternatives) + ")" if exact else self.head
        self.exact = bool(exact)


def _items(query: ParsedQuery) -> list[_Item]:
    exact: dict[str, list[str]] = {}
    for word in query.exact:
        exact.setdefault(fold_fast(word), []).append(word)
    return [_Item([t], exact.get(t, [])) for t in query.terms] + [_Item(p, []) for p in query.phrases]


def _all(items: Sequence[_Item], part: Callable[[_Item], str]) -> str:
    return " AND ".join(part(i) for i in items)


NO_PENDING = 1 << 62  # above every docid


class _Match:
    """The documents holding every item: ``words`` on ``search_fts``; or, when every item is a phrase of ASCII
    words, ``pairs`` on ``search_pairs`` for the documents whose pairs are written (docid below ``pending``)
    and ``words`` for the pending ones (the newest, ``PAIRS_BATCH`` at most: cheap either way)."""

    def __init__(self, items: Sequence[_Item], pending: int | None) -> None:
        self.words = _all(items, lambda i: i.match)
        self.pairs = " AND ".join(i.pairs for i in items if i.pairs) if all(i.pairs for i in items) else None
        self.pending = NO_PENDING if pending is None else pending
        # FTS5 matches the intersection of what each item's expression matches (the sets ``termsets`` keeps):
        # items of one word, or phrases of ASCII words (their pairs find them cheaply; see ``rowids``)
        self.items = list(items) if all(i.words == [i.match] or i.pairs for i in items) else None

    def kept(self) -> list[tuple[str, Callable[[int], tuple[str, list[object]]]]]:
        """For ``termsets``: each item's expression, and the SQL of its matches above a docid (as ``rowids``)."""
        def above(item: _Item) -> Callable[[int], tuple[str, list[object]]]:
            alone = _Match([item], None)
            alone.pending = self.pending
            return lambda since: alone.rowids(" AND f.rowid > ?", [since])

        return [(i.match, above(i)) for i in self.items or ()]

    def rowids(self, condition: str = "", args: Sequence[object] = (), newest: int = 0) -> tuple[str, list[object]]:
        """SQL selecting the rowid (``f.rowid``) of every matching document that meets ``condition`` (SQL on
        ``f``, with ``args``: `` AND ...``), and its parameters; only the ``newest`` of the written pairs' ones if
        asked (their newest ``newest`` are among them). The pending documents are read upwards from the first
        (never with ORDER BY rowid DESC: FTS5 would pass the first by and read on to the oldest document while
        no other holds the phrase's words in place)."""
        if self.pairs is None:
            return f"SELECT f.rowid FROM search_fts f WHERE search_fts MATCH ?{condition}", [self.words, *args]
        pairs = f"SELECT f.rowid FROM search_pairs f WHERE search_pairs MATCH ? AND f.rowid < ?{condition}"
        if newest:
            pairs = f"SELECT rowid FROM ({pairs} ORDER BY f.rowid DESC LIMIT {int(newest)})"
        return (f"SELECT f.rowid FROM search_fts f WHERE search_fts MATCH ? AND f.rowid >= ?{condition} "
                f"UNION ALL {pairs}", [self.words, self.pending, *args, self.pairs, self.pending, *args])


def _filter_sql(request: SearchRequest) -> tuple[str, list[object]]:
    """SQL conditions on ``search_docs d`` for the request's filters (empty when none)."""
    f = request.filters
    clauses: list[str] = []
    args: list[object] = []
    for column, values in (("type_name", f.type_name), ("organ_name", f.organ_name),
                           ("classification", f.classification), ("batch", f.batch), ("file_code", f.file_code)):
        wanted = [nfc(v) for v in values]
        if wanted:
            clauses.append(f"d.{column} IN ({','.join('?' * len(wanted))})")
            args += wanted
    for clause, value in (("d.year >= ?", f.year_from), ("d.year <= ?", f.year_to),
                          ("d.issued_date >= ?", f.date_from), ("d.issued_date <= ?", f.date_to)):
        if value is not None:
            clauses.append(clause)
            args.append(value if isinstance(value, int) else value.isoformat())
    return " AND ".join(clauses), args


class _Scope:
    """Which documents a request may return: visible at its clearance and passing its filters. ``source`` is
    the SQL of the rows of an FTS table (alias ``f``) that match a parameter and are in scope."""

    def __init__(self, request: SearchRequest) -> None:
        self.where, self.args = _filter_sql(request)
        clearance = min(max(int(request.clearance), 0), MAX_LEVEL)
        self.visible = "" if clearance >= MAX_LEVEL else f" AND (f.rowid & {LEVEL_MASK}) <= {clearance}"
        self.clearance = clearance

    def source(self, table: str, *, filtered: bool = True, joined: bool = False) -> str:
        join = " JOIN search_docs d ON d.docid = f.rowid" if (joined or (filtered and self.where)) else ""
        extra = f" AND {self.where}" if filtered and self.where else ""
        return f"{table} f{join} WHERE {table} MATCH ?{self.visible}{extra}"

    def params(self, expr: str, *, filtered: bool = True) -> list[object]:
        return [expr, *self.args] if filtered else [expr]

    def matches(self, match: _Match, *, joined: bool = False) -> tuple[str, list[object]]:
        """``source`` for the in-scope documents of ``match`` (alias ``f``, its rowid the docid), and its
        parameters."""
        if match.pairs is None:
            return self.source("search_fts", joined=joined), self.params(match.words)
        if joined:
            rowids, args = match.rowids(self.visible)
            where = f" AND {self.where}" if self.where else ""
            return f"({rowids}) f JOIN search_docs d ON d.docid = f.rowid WHERE 1{where}", [*args, *self.args]
        rowids, args = match.rowids(*self._condition())
        return f"({rowids}) f WHERE 1", args

    def newest(self, match: _Match, limit: int, name: str, *, below: int | None = None) -> tuple[str, list[object]]:
        """A CTE ``name`` (column ``docid``): the ``limit`` newest in-scope documents of ``match`` (with a docid
        below ``below`` if given), newest first, and its parameters."""
        condition, args = self._condition()
        if below is not None:
            condition += " AND f.rowid < ?"
            args.append(below)
        if match.pairs is None:
            return (f"{name} AS MATERIALIZED (SELECT f.rowid AS docid FROM search_fts f WHERE search_fts MATCH ?"
                    f"{condition} ORDER BY f.rowid DESC LIMIT {int(limit)})"), [match.words, *args]
        rowids, args = match.rowids(condition, args, newest=limit)
        return (f"{name}_all AS MATERIALIZED ({rowids}), {name} AS MATERIALIZED "
                f"(SELECT rowid AS docid FROM {name}_all ORDER BY rowid DESC LIMIT {int(limit)})"), args

    def _condition(self) -> tuple[str, list[object]]:
        """The scope as a condition on ``f`` (the filters as a lookup per match), and its parameters."""
        where = f" AND EXISTS (SELECT 1 FROM search_docs d WHERE d.docid = f.rowid AND {self.where})" \
            if self.where else ""
        return self.visible + where, list(self.args) if self.where else []


class Probes:
    """What searches on one read connection learned of the database while no other connection changed it
    (``PRAGMA data_version``): which words are common at a clearance (``_common_items``), and how many documents
    each clearance sees (``_visible_share``)."""

    LIMIT = 50_000  # words remembered, forgotten all at once beyond

    def __init__(self) -> None:
        self.version: tuple[int, int] | None = None
        self.common: dict[tuple[str, int], bool] = {}
        self.visible: dict[int, int] = {}

    def at(self, version: int) -> dict[tuple[str, int], bool]:
        if (version, RANK_DF) != self.version or len(self.common) > self.LIMIT:
            self.version, self.common, self.visible = (version, RANK_DF), {}, {}
        return self.common


def _common_items(conn: sqlite3.Connection, scope: _Scope, items: list[_Item],
                  known: dict[tuple[str, int], bool]) -> list[bool]:
    """For each item: would bm25 over it be costly, i.e. is each of its words in more than ``RANK_DF`` visible
    documents (a probe per word reads at most ``RANK_DF`` doclist entries; a phrase costs what its rarest word
    costs)? The words ``known`` (at this clearance) are not probed again; the others in one statement: every
    round trip to SQLite is a handover of Python's GIL, slow under concurrency."""
    words = [w for w in dict.fromkeys(w for i in items for w in i.words) if (w, scope.clearance) not in known]
    if words:
        probe = f"(SELECT 1 FROM {scope.source('search_fts', filtered=False)} LIMIT 1 OFFSET {RANK_DF})"
        row = conn.execute("SELECT " + ", ".join([probe] * len(words)), words).fetchone()
        known.update(((w, scope.clearance), v is not None) for w, v in zip(words, row, strict=True))
    return [all(known[(w, scope.clearance)] for w in i.words) for i in items]


def _result(conn: sqlite3.Connection, request: SearchRequest, total: int, order: list[tuple[int, float]],
            wanted: set[str], facets: dict[str, list[FacetCount]], phrase: re.Pattern[str] | None = None
            ) -> SearchResult:
    page = order[request.offset:request.offset + request.limit]
    return SearchResult(total=total, hits=_fetch_hits(conn, page, wanted, phrase), facets=facets)


def run_search(conn: sqlite3.Connection, request: SearchRequest, probes: Probes | None = None,
               columns: FacetColumns | None = None) -> SearchResult:
    """Run ``request`` on ``conn`` (a read transaction is the caller's; ``probes``: what earlier searches on
    ``conn`` learned, if kept; ``columns``: the index's facet column store, if kept: facets are grouped in SQL
    without it)."""
    query = parse_query(request.query)
    scope = _Scope(request)
    if not query.raw.strip():  # no query: browse
        return _browse(conn, request, scope, columns)
    items = _items(query)
    if not items:  # text with no word in it ("***"): nothing to find
        return SearchResult(total=0, hits=[], facets=empty_facets() if request.facets else {})
    version, pending = conn.execute("SELECT (SELECT data_version FROM pragma_data_version()), "
                                    "(SELECT min(docid) FROM search_pairs_pending)").fetchone()
    cache = probes or Probes()
    known = cache.at(int(version))
    match = _Match(items, pending)
    counted, facets = _facets(conn, request, scope, match, columns) if request.facets else (None, {})
    wanted = query.all_tokens()
    if request.sort in _SORT_SQL:
        total = counted if counted is not None else _count(conn, scope, match)
        source, args = scope.matches(match, joined=True)
        rows = conn.execute(f"SELECT f.rowid FROM {source} ORDER BY {_SORT_SQL[request.sort]} LIMIT ? OFFSET ?",
                            [*args, request.limit, request.offset]).fetchall()
        return SearchResult(total=total, hits=_fetch_hits(conn, [(int(r[0]), 0.0) for r in rows], wanted,
                                                          _phrase_pattern(query)), facets=facets)
    # a query of phrases of ASCII words (every item on the pairs: a number looked up, a quoted phrase) is ranked in
    # tiers whatever its words' frequency: see the module's docstring
    rare = [] if match.pairs is not None else [
        i for i, common in zip(items, _common_items(conn, scope, items, known), strict=True) if not common]
    if rare:
        total, order = _rank_rare(conn, scope, query, items, rare, match, request.offset + request.limit)
    else:
        total, order = _rank_common(conn, scope, query, items, match, request.offset + request.limit, cache)
        if counted is None and total > COUNT_EXACT:  # estimated (see _rank_common)
            result = _result(conn, request, total, order, wanted, facets, _phrase_pattern(query))
            return result.model_copy(update={"total_exact": False})
    return _result(conn, request, total if counted is None else counted, order, wanted, facets,
                   _phrase_pattern(query))


def _count(conn: sqlite3.Connection, scope: _Scope, match: _Match) -> int:
    source, args = scope.matches(match)
    return int(conn.execute(f"SELECT count(*) FROM {source}", args).fetchone()[0])


def _rank_rare(conn: sqlite3.Connection, scope: _Scope, query: ParsedQuery, items: list[_Item], rare: list[_Item],
               match: _Match, want: int) -> tuple[int, list[tuple[int, float]]]:
    """Every match, ranked by bm25 over the items that are not common (at most ``RANK_DF`` documents hold them:
    cheap); the common ones only filter. The number-lookup tier first. One statement (see ``_common_items``)."""
    args: list[object] = scope.params(_all(rare, lambda i: i.ranked))
    only = ""
    if len(rare) < len(items):
        rowids, match_args = match.rowids()
        only = f" AND f.rowid IN ({rowids})"
        args += match_args
    codes, code_args = _code_condition(scope, query)
    total, top, tier = conn.execute(
        f"WITH r AS MATERIALIZED (SELECT f.rowid AS docid, {BM25} AS b FROM {scope.source('search_fts')}{only}) "
        "SELECT (SELECT count(*) FROM r), "
        "(SELECT json_group_array(json_array(docid, b)) FROM (SELECT docid, b FROM r ORDER BY b, docid LIMIT ?)), "
        "(SELECT json_group_array(json_array(r.docid, r.b)) FROM r JOIN search_docs d ON d.docid = r.docid "
        f"WHERE {codes})", [*args, want + MAX_CODE_TIER, *code_args]).fetchone()
    ranked = sorted(((int(d), float(b)) for d, b in json.loads(top)), key=lambda t: (t[1], t[0]))
    in_tier = sorted(((int(d), float(b)) for d, b in json.loads(tier)), key=lambda t: (t[1], t[0]))
    return int(total), _merge([[(d, CODE_TIER_BONUS - b) for d, b in in_tier], [(d, -b) for d, b in ranked]], want)


def _rank_common(conn: sqlite3.Connection, scope: _Scope, query: ParsedQuery, items: list[_Item], match: _Match,
                 want: int, probes: Probes) -> tuple[int, list[tuple[int, float]]]:
    """Every item is common (bm25 would read their whole doclists, and its idf is near zero anyway), or a phrase
    on the pairs (bm25 would read the positions of its words: see the module's docstring): the number-lookup
    tier, then the documents holding every item in their heading with the user's exact diacritics, then in their
    heading, then the other matches; each tier most recently indexed first (``HEAD_K`` at most for a heading
    tier). Scores: ``CODE_TIER_BONUS``, 2, 1, 0.

    The total comes from the same scan as the newest matches, which stops after ``COUNT_EXACT`` + 1 of them: up
    to ``COUNT_EXACT`` it is exact; above, it is estimated from the share of the docid range those newest matches
    cover (docids grow with each document indexed), or for a caller who may not see every level, from the share
    of the documents they see (``_visible_share``). One statement (see ``_common_items``), and that share."""
    codes, code_args = _code_condition(scope, query)
    heading = _heading_tier(scope)
    exact = any(i.exact for i in items)
    newest_cte, args = scope.newest(match, COUNT_EXACT + 1, "n")
    count, oldest, first, last, newest, headed, exact_headed, tier = conn.execute(
        f"WITH {newest_cte} "
        "SELECT (SELECT count(*) FROM n), (SELECT min(docid) FROM n), "
        "(SELECT min(docid) FROM search_docs), (SELECT max(docid) FROM search_docs), "
        "(SELECT json_group_array(docid) FROM (SELECT docid FROM n ORDER BY docid DESC LIMIT ?)), "
        f"{heading}, {heading if exact else '(SELECT json_array())'}, "
        # number-lookup tier: a match, found in ``n`` when it holds all (an FTS5 probe by rowid costs ~1 ms)
        f"(SELECT json_group_array(d.docid) FROM search_docs d WHERE {codes} AND (d.docid IN (SELECT docid FROM n) "
        f"OR ((SELECT count(*) FROM n) > {COUNT_EXACT} AND EXISTS "
        "(SELECT 1 FROM search_fts WHERE search_fts MATCH ? AND rowid = d.docid))))",
        [*args, want + 2 * HEAD_K + MAX_CODE_TIER,
         *2 * [*scope.params(_all(items, lambda i: i.head)), min(2 * want, HEAD_K)],  # the exact ones among them
         *(2 * [*scope.params(_all(items, lambda i: i.head_exact)), min(want, HEAD_K)] if exact else []),
         *code_args, match.words]).fetchone()
    matches = [int(d) for d in json.loads(newest)]
    total = int(count)
    if total > COUNT_EXACT:
        share = (last - oldest + 1) / max(1, last - first + 1) if scope.clearance >= MAX_LEVEL else \
            _visible_share(conn, scope, oldest, probes)
        total = max(COUNT_EXACT + 1, _two_digits(total / share))
    if want + 2 * HEAD_K + MAX_CODE_TIER > len(matches) == count > COUNT_EXACT:  # a deep page: read on
        deeper, deeper_args = scope.newest(match, want + 2 * HEAD_K + MAX_CODE_TIER, "m", below=matches[-1])
        matches += [int(r[0]) for r in conn.execute(f"WITH {deeper} SELECT docid FROM m", deeper_args)]
    return total, _merge([[(int(d), CODE_TIER_BONUS) for d in sorted(json.loads(tier), reverse=True)],
                          [(int(d), 2.0) for d in json.loads(exact_headed)],
                          [(int(d), 1.0) for d in json.loads(headed)],
                          [(d, 0.0) for d in matches]], want)


def _heading_tier(scope: _Scope) -> str:
    """SQL: the newest matches (``n``) whose heading matches a parameter (at most a parameter of them; both given
    twice), as JSON. None when nothing matches; when ``n`` holds every match, the heading's matches read forwards
    and kept if in ``n`` (FTS5 reads a doclist backwards at about twice the cost); else the newest, backwards."""
    head = scope.source("search_head")
    return (f"(CASE WHEN NOT EXISTS (SELECT 1 FROM n) THEN json_array() "
            f"WHEN (SELECT count(*) FROM n) <= {COUNT_EXACT} THEN (SELECT json_group_array(docid) FROM (SELECT docid "
            f"FROM n WHERE docid IN (SELECT f.rowid FROM {head}) ORDER BY docid DESC LIMIT ?)) "
            f"ELSE (SELECT json_group_array(docid) FROM (SELECT f.rowid AS docid FROM {head} "
            "ORDER BY f.rowid DESC LIMIT ?)) END)")


def _visible_share(conn: sqlite3.Connection, scope: _Scope, oldest: int, probes: Probes) -> float:
    """The share of the documents the caller sees that were indexed since ``oldest`` (a docid). The docid range
    cannot say it: classified documents take docids too, so an estimate over it would move with how many there
    are (and, set beside the exact count facets give, tell how many hold the query's words); counted over the
    visible documents only, the estimate depends on nothing the caller may not see. How many documents a
    clearance sees is remembered until the index changes (``Probes``)."""
    visible = f"(docid & {LEVEL_MASK}) <= {scope.clearance}"
    seen = probes.visible.get(scope.clearance)
    if seen is None:
        seen = probes.visible[scope.clearance] = int(
            conn.execute(f"SELECT count(*) FROM search_docs WHERE {visible}").fetchone()[0])
    since = int(conn.execute(f"SELECT count(*) FROM search_docs WHERE docid >= ? AND {visible}",
                             (oldest,)).fetchone()[0])
    return max(1, since) / max(1, seen)


def _two_digits(estimate: float) -> int:
    """An estimate rounded to two significant digits (38712.4 -> 39000): it does not look like a count."""
    step = 10 ** max(0, len(str(int(estimate))) - 2)
    return int(round(estimate / step) * step)


def _merge(tiers: Sequence[Sequence[tuple[int, float]]], want: int) -> list[tuple[int, float]]:
    """The first ``want`` of the tiers in order, each document once (at its first place)."""
    seen: set[int] = set()
    out = []
    for tier in tiers:
        for docid, score in tier:
            if docid not in seen:
                seen.add(docid)
                out.append((docid, score))
                if len(out) >= want:
                    return out
    return out


def _code_condition(scope: _Scope, query: ParsedQuery) -> tuple[str, list[object]]:
    """SQL condition on ``search_docs d``: in scope, and its số/ký hiệu is (or starts with) one the query looks
    up (``MAX_CODE_TIER`` documents at most); ``0`` when the query looks none up."""
    codes = query.codes[:MAX_CODE_TIER]
    if not codes:
        return "0", []
    keys = " OR ".join("(d.code_key = ? OR (d.code_key > ? AND d.code_key < ?))" for _ in codes)
    args: list[object] = [v for c in codes for v in (c, c + " ", c + "!")]
    visible = "" if scope.clearance >= MAX_LEVEL else f" AND d.level <= {scope.clearance}"
    extra = f" AND {scope.where}" if scope.where else ""
    return (f"d.docid IN (SELECT d.docid FROM search_docs d WHERE ({keys}){visible}{extra} "
            f"LIMIT {MAX_CODE_TIER})"), [*args, *scope.args]


def _facets(conn: sqlite3.Connection, request: SearchRequest, scope: _Scope, match: _Match | None,
            columns: FacetColumns | None) -> tuple[int, dict[str, list[FacetCount]]]:
    """The number of in-scope matches of ``match`` (every visible document when ``None``: browsing) and their
    facet counts: on the column store when there is one and it holds them, else grouped in SQL."""
    if columns is not None:
        state, snapshot = columns.current(conn)
        args: list[object] = []
        if match is None:  # the docid's low bits are its level: the clearance is checked on the docid
            visible = "" if scope.clearance >= MAX_LEVEL else f" WHERE (docid & {LEVEL_MASK}) <= {scope.clearance}"
            rowids = f"SELECT docid AS rowid FROM search_docs{visible}"
        else:
            rowids, args = match.rowids(scope.visible)
        # the same matches (SQL and its parameters, the clearance in them) and filters on the same documents
        key = None if snapshot is None else (snapshot, scope.clearance, rowids, repr(args),
                                             request.filters.model_dump_json())
        counted = None if key is None else columns.cached(key)
        if counted is None and state is not None and snapshot is not None and (match is None or match.items):
            serials = columns.terms.serials(conn, state, snapshot, [] if match is None else match.kept(),
                                            scope.clearance)
            counted = None if serials is None else count_serials(state, serials, request.filters)
        if counted is None and state is not None:
            counted = count_facets(state, matched_docids(conn, rowids, args), request.filters)
        if counted is None:
            counted = _sql_facets(conn, scope, match)
        if key is not None:
            columns.remember(key, counted)
        return counted
    return _sql_facets(conn, scope, match)


def _sql_facets(conn: sqlite3.Connection, scope: _Scope, match: _Match | None
                ) -> tuple[int, dict[str, list[FacetCount]]]:
    if match is None:
        return sql_facets(conn, f"search_docs d{_browse_condition(scope)}", scope.args)
    return sql_facets(conn, *scope.matches(match, joined=True))


def _browse_condition(scope: _Scope) -> str:
    conds = ([f"d.level <= {scope.clearance}"] if scope.clearance < MAX_LEVEL else []) + (
        [scope.where] if scope.where else [])
    return " WHERE " + " AND ".join(conds) if conds else ""


def _browse(conn: sqlite3.Connection, request: SearchRequest, scope: _Scope,
            columns: FacetColumns | None) -> SearchResult:
    """An empty query: every visible document that passes the filters, newest first (or as sorted)."""
    cond = _browse_condition(scope)
    if request.facets:
        total, facets = _facets(conn, request, scope, None, columns)
    else:
        total = int(conn.execute(f"SELECT count(*) FROM search_docs d{cond}", scope.args).fetchone()[0])
        facets = {}
    if request.limit == 0 or request.offset >= total:
        return SearchResult(total=total, hits=[], facets=facets)
    order = _SORT_SQL["date_asc" if request.sort == "date_asc" else "date_desc"]
    rows = conn.execute(f"SELECT d.docid FROM search_docs d{cond} ORDER BY {order} LIMIT ? OFFSET ?",
                        [*scope.args, request.limit, request.offset]).fetchall()
    return SearchResult(total=total, hits=_fetch_hits(conn, [(int(r[0]), 0.0) for r in rows], set()),
                        facets=facets)
