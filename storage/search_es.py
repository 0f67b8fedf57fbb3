"""Elasticsearch search backend (``SOHOA_SEARCH_INDEX=elasticsearch``), for the official client 8.x/9.x.

Same query semantics as the embedded backend (``storage.search_sqlite``; both pass ``tests/test_search_contract``):
queries are parsed by ``schemas.query.parse_query`` and every term and phrase must match (folded) in the text,
the title (type, subject, issuing body, signer) or the số/ký hiệu. Documents whose số/ký hiệu the query looks up
rank first, then relevance (BM25), raised by the query's exact (accented) words.

Index layout (``index_body``; golden copy in ``tests/golden/es_index.json``):

- ``text`` (the pages, NFC) and ``title``: the field itself is the *exact* form and ``.folded`` mirrors
  ``schemas.text.fold`` (``lowercase`` + ``asciifolding``: đ→d, every tone and vowel mark removed; checked by a
  golden test with the ``_analyze`` API). Both use a ``pattern`` tokenizer that extracts exactly the words
  ``schemas.text.tokens`` finds (runs of letters, digits, underscore), so positions and phrases agree with the
  query parser. The exact analyzer keeps vowel marks (ă â ê ô ơ ư đ) and makes tone placement irrelevant, like
  ``schemas.text.canonical_tones``: built-in ``pattern_replace`` char filters (no plugin) turn each toned vowel
  into its base vowel plus a tone marker letter, then move the marker to the end of the word, so ``hòa``,
  ``hoà`` and ``HOÀ`` are all ``hoaˋ`` while ``ma``/``má``/``mà`` stay distinct. Elasticsearch has no NFC filter
  without the ICU plugin: text and queries are NFC'd here (``schemas.text.clean_ocr_text``), before they are sent.
- ``code`` (số/ký hiệu): a keyword with the ``sohoa_code`` normaliser (punctuation runs → one space, lower case,
  folded: ``15-NQ/TU`` → ``15 nq tu``, the ``schemas.query.code_key`` form); a document holds its key and each
  shorter prefix (``15 nq``) so a lookup of ``15-NQ`` finds ``15-NQ/TU``. ``code_text`` is the same code as
  searchable folded text.
- filter and facet fields are keywords/numbers/dates; ``metadata`` is kept in ``_source`` only (not indexed).

Query (``search_body``; golden copies in ``tests/golden/es_queries.json``): built from parsed tokens only (never
``query_string``), so hostile input cannot reach a query parser. The caller's clearance and the filters are
``bool.filter`` clauses, so hits, total and aggregations never include a hidden document. Snippets come from the
highlighter on ``text.folded`` (the original text, diacritics included); the tags are stripped here and turned
into character offsets.

Writes go through an alias (``index``): ``upsert``/``delete`` are bulk requests that return once the change is
searchable; ``replace_all`` builds ``<index>-<timestamp>``, bulk-loads and refreshes it, swaps the alias
atomically and deletes the previous index, so readers see the old index until the new one is complete.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from schemas.document import SearchHit, SearchResult
from schemas.metadata import CONTRACT_KEYS
from schemas.query import ParsedQuery, code_key, parse_query
from schemas.search import FACET_FIELDS, UNCLASSIFIED, FacetCount, IndexEntry, SearchRequest
from schemas.text import clean_ocr_text, nfc

SNIPPET_CHARS = 200
FACET_SIZE = 100  # values per facet, most frequent first (as the embedded backend)
TITLE_BOOST = 4.0  # weights as the embedded backend's bm25 columns: code 10, title 4, body 1, exact 8
CODE_TEXT_BOOST = 10.0
EXACT_BOOST = 8.0
CODE_TIER_BOOST = 1000.0  # a document whose số/ký hiệu the query looks up ranks above every other match
MAX_WORD_CHARS = 1_000  # longer words are truncated when indexed (only OCR noise is that long)
MAX_RESULT_WINDOW = 101_000  # SearchRequest allows offset 100 000 + limit 1 000
BULK_CHUNK = 500
IDS_PAGE = 5_000
PRE_TAG, POST_TAG = "\ue000", "\ue001"  # private-use characters: removed from the indexed text if present

# --- analysis ------------------------------------------------------------------------------------------------

# Tone marks → marker letters (Unicode "modifier letters", category Lm: tokens keep them, lowercase leaves them).
TONE_MARKERS = {"grave": ("\u0300", "\u02cb"), "acute": ("\u0301", "\u02ca"), "hook": ("\u0309", "\u02c0"),
                "tilde": ("\u0303", "\u02c7"), "dot": ("\u0323", "\u02cc")}
_VOWELS = {"a": "a", "aw": "ă", "aa": "â", "e": "e", "ee": "ê", "i": "i", "o": "o", "oo": "ô", "ow": "ơ", "u": "u",
           "uw": "ư", "y": "y"}  # Telex names
_WORD = r"[\p{L}\p{N}_]+"  # Python's \w: letters, digits, underscore


def _tone_filters() -> dict[str, dict[str, str]]:
    """The exact analyzer's char filters, in order: 60 ``toned vowel → base vowel + marker`` (one per tone and
    vowel: a replacement cannot compute a character) and one that moves each marker to the end of its word.
    Replacements use ``$n`` only before another ``$`` or at the end (portable across regex engines)."""
    filters: dict[str, dict[str, str]] = {}
    for tone, (mark, marker) in TONE_MARKERS.items():
        for name, base in _VOWELS.items():
            lower, upper = nfc(base + mark), nfc(base.upper() + mark)
            assert len(lower) == len(upper) == 1, (base, tone)
            filters[f"tone_{tone}_{name}"] = {"type": "pattern_replace", "pattern": f"[{lower}{upper}]",
                                              "replacement": base + marker}
    markers = "".join(marker for _, marker in TONE_MARKERS.values())
    filters["tone_to_word_end"] = {"type": "pattern_replace", "pattern": f"([{markers}])({_WORD})",
                                   "replacement": "$2$1"}
    return filters


def index_body() -> dict[str, Any]:
    """Settings and mappings of every concrete index (``tests/golden/es_index.json``)."""
    tone_filters = _tone_filters()
    text_field = {"type": "text", "analyzer": "sohoa_exact",
                  "fields": {"folded": {"type": "text", "analyzer": "sohoa_folded"}}}
    # the highlighted field keeps offsets in its postings: snippets need no re-analysis, so a text over
    # index.highlight.max_analyzed_offset (1 000 000 characters) is highlighted instead of failing the search
    body_field = {"type": "text", "analyzer": "sohoa_exact",
                  "fields": {"folded": {"type": "text", "analyzer": "sohoa_folded", "index_options": "offsets"}}}
    keyword = {"type": "keyword"}
    return {
        "settings": {
            # refresh_interval set explicitly: no "search idle" shards, so upserts (refresh=wait_for) return within it
            "index": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "refresh_interval": "1s",
                      "max_result_window": MAX_RESULT_WINDOW},
            "analysis": {
                "char_filter": {
                    **tone_filters,
                    "code_punctuation": {"type": "pattern_replace", "pattern": r"[^\p{L}\p{N}]+", "replacement": " "},
                },
                # group 0: the matches are the tokens (rather than splitting on the complement, group -1: the
                # same tokens, but the stand-in mishandles that form when indexing)
                "tokenizer": {"sohoa_words": {"type": "pattern", "pattern": _WORD, "group": 0}},
                # OCR garbage can make a "word" of thousands of characters: Lucene refuses terms over 32 766 bytes
                "filter": {"sohoa_long_words": {"type": "truncate", "length": MAX_WORD_CHARS}},
                "analyzer": {
                    "sohoa_folded": {"type": "custom", "tokenizer": "sohoa_words",
                                     "filter": ["lowercase", "asciifolding", "sohoa_long_words"]},
                    "sohoa_exact": {"type": "custom", "tokenizer": "sohoa_words", "char_filter": list(tone_filters),
                                    "filter": ["lowercase", "sohoa_long_words"]},
                },
                "normalizer": {
                    "sohoa_code": {"type": "custom", "char_filter": ["code_punctuation"],
                                   "filter": ["lowercase", "asciifolding", "trim"]},
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "id": keyword,
                "source": keyword,
                "batch": keyword,
                "file_code": keyword,
                "status": keyword,
                "type_name": keyword,
                "organ_name": keyword,
                "classification": keyword,
                "code": {"type": "keyword", "normalizer": "sohoa_code"},
                "code_text": {"type": "text", "analyzer": "sohoa_folded"},
                "issued_date": {"type": "date", "format": "strict_date"},
                "year": {"type": "integer"},
                "secrecy_level": {"type": "byte"},
                "title": text_field,
                "text": body_field,
                "metadata": {"type": "object", "enabled": False},
            },
        },
    }


# --- documents -----------------------------------------------------------------------------------------------


def _text_value(value: object) -> str | None:
    return clean_ocr_text(value.strip()) or None if isinstance(value, str) else None


def code_values(number: object, notation: object) -> list[str]:
    """``15``, ``NQ/TU`` → ``["15 nq tu", "15 nq"]``: the ``code_key`` and its shorter prefixes (two words or more,
    as every lookup key ``parse_query`` makes)."""
    key = code_key(number, notation)
    if key is None:
        return []
    words = key.split()
    return [" ".join(words[:n]) for n in range(len(words), 1, -1)]


def _iso_date(value: str | None) -> str | None:
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


def document_of(entry: IndexEntry) -> dict[str, Any]:
    """The indexed form of one entry (its ``_id`` is ``entry.id``)."""
    md = entry.metadata
    title = "\n".join(v for v in (_text_value(md.get(k)) for k in ("type_name", "subject", "organ_name", "signer"))
                      if v)
    number, notation = md.get("code_number"), md.get("code_notation")
    return {
        "id": entry.id,
        "source": entry.source,
        "batch": entry.batch,
        "file_code": entry.file_code,
        "status": entry.status,
        "type_name": _text_value(md.get("type_name")),
        "organ_name": _text_value(md.get("organ_name")),
        "classification": _text_value(md.get("classification")) or UNCLASSIFIED,
        "code": code_values(number, notation),
        "code_text": f"{number or ''}-{notation or ''}" if (number or notation) else "",
        "issued_date": _iso_date(entry.issued_date),
        "year": entry.year,
        "secrecy_level": entry.secrecy_level,
        "title": title,
        "text": clean_ocr_text(entry.text).replace(PRE_TAG, " ").replace(POST_TAG, " "),
        "metadata": md,
    }


# --- queries -------------------------------------------------------------------------------------------------


def query_items(query: ParsedQuery) -> list[dict[str, Any]]:
    """One clause per term and phrase: it matches (folded) in the text, the title or the số/ký hiệu."""
    items = [("match", t) for t in query.terms] + [("match_phrase", " ".join(p)) for p in query.phrases]
    return [{"bool": {"should": [{kind: {"text.folded": {"query": q}}},
                                 {kind: {"title.folded": {"query": q, "boost": TITLE_BOOST}}},
                                 {kind: {"code_text": {"query": q, "boost": CODE_TEXT_BOOST}}}],
                      "minimum_should_match": 1}} for kind, q in items]


def _boosts(query: ParsedQuery) -> list[dict[str, Any]]:
    """Optional clauses (they add score, never matches): the user's exact words, the số/ký hiệu looked up."""
    should: list[dict[str, Any]] = []
    if query.exact:
        words = " ".join(query.exact)
        should += [{"match": {"text": {"query": words, "boost": EXACT_BOOST}}},
                   {"match": {"title": {"query": words, "boost": EXACT_BOOST}}}]
    if query.codes:
        should.append({"constant_score": {"filter": {"terms": {"code": query.codes}}, "boost": CODE_TIER_BOOST}})
    return should


def visibility(request: SearchRequest) -> list[dict[str, Any]]:
    """The clearance as a filter clause: hits, total and aggregations never see a document above it."""
    return [{"range": {"secrecy_level": {"lte": request.clearance}}}]


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    f = request.filters
    clauses = visibility(request)
    for name in ("type_name", "organ_name", "classification", "batch", "file_code"):
        values = [nfc(v) for v in getattr(f, name)]
        if values:
            clauses.append({"terms": {name: values}})
    years = {k: v for k, v in (("gte", f.year_from), ("lte", f.year_to)) if v is not None}
    if years:
        clauses.append({"range": {"year": years}})
    dates = {k: v.isoformat() for k, v in (("gte", f.date_from), ("lte", f.date_to)) if v is not None}
    if dates:
        clauses.append({"range": {"issued_date": dates}})
    return clauses


_SORT = {
    "date_desc": [{"issued_date": {"order": "desc", "missing": "_last"}}],
    "date_asc": [{"issued_date": {"order": "asc", "missing": "_last"}}],
    "relevance": [{"_score": {"order": "desc"}}, {"issued_date": {"order": "desc", "missing": "_last"}}],
}


def search_body(request: SearchRequest) -> dict[str, Any]:
    """The ``_search`` body for ``request`` (``tests/golden/es_queries.json``). Every query item must match (no
    OR fallback: it would answer a query on words only a classified document holds with unrelated documents)."""
    query = parse_query(request.query)
    items = query_items(query)
    match: dict[str, Any] = {"bool": {"must": items, "should": _boosts(query)}} if items else {"match_all": {}}
    body: dict[str, Any] = {
        "query": {"bool": {"must": [match], "filter": _filters(request)}},
        "from": request.offset,
        "size": request.limit,
        "track_total_hits": True,
        "sort": [*_SORT[request.sort], {"id": {"order": "asc"}}],
        "_source": {"excludes": ["text", "title", "code_text"]},
        "highlight": {
            "pre_tags": [PRE_TAG],
            "post_tags": [POST_TAG],
            "fields": {"text.folded": {"type": "unified", "number_of_fragments": 1, "fragment_size": SNIPPET_CHARS,
                                       "no_match_size": SNIPPET_CHARS}},
        },
    }
    if request.sort != "relevance":
        body["track_scores"] = True
    if request.facets:
        body["aggs"] = {name: {"terms": {"field": name, "size": FACET_SIZE}} for name in FACET_FIELDS}
    return body


def highlighted(fragment: str) -> tuple[str, list[tuple[int, int]]]:
    """Strip the highlighter's tags; return the plain snippet and the [start, end) offsets of the marked words."""
    out: list[str] = []
    marks: list[tuple[int, int]] = []
    length, start = 0, None
    for piece in re.split(f"([{PRE_TAG}{POST_TAG}])", fragment):
        if piece == PRE_TAG:
            start = length
        elif piece == POST_TAG:
            if start is not None and length > start:
                marks.append((start, length))
            start = None
        elif piece:
            out.append(piece)
            length += len(piece)
    snippet = "".join(out).replace("\n", " ").replace("\t", " ").replace("\r", " ")
    return snippet, marks


def _metadata(md: dict[str, Any]) -> dict[str, object]:
    return {k: md.get(k) for k in CONTRACT_KEYS} | {k: v for k, v in md.items() if k not in CONTRACT_KEYS}


def result_of(response: dict[str, Any]) -> SearchResult:
    hits = []
    for hit in response["hits"]["hits"]:
        src = hit.get("_source") or {}
        fragments = (hit.get("highlight") or {}).get("text.folded") or [""]
        snippet, marks = highlighted(fragments[0])
        hits.append(SearchHit(id=src.get("id", hit["_id"]), source=src.get("source", ""),
                              score=round(float(hit.get("_score") or 0.0), 4), snippet=snippet, highlights=marks,
                              metadata=_metadata(src.get("metadata") or {})))
    facets: dict[str, list[FacetCount]] = {}
    for name, agg in (response.get("aggregations") or {}).items():
        facets[name] = [FacetCount(value=str(b["key"]), count=int(b["doc_count"]))
                        for b in agg.get("buckets", []) if b["doc_count"] > 0]
    total = response["hits"]["total"]  # counted by the query itself: its filter holds the caller's clearance
    bound = isinstance(total, dict) and total.get("relation") == "gte"  # a lower bound (not with track_total_hits)
    return SearchResult(total=int(total["value"] if isinstance(total, dict) else total), hits=hits, facets=facets,
                        total_exact=not bound)


# --- the index -----------------------------------------------------------------------------------------------


class ElasticsearchIndex:
    """``SearchIndex`` on Elasticsearch 8.x/9.x; ``index`` is an alias in front of ``<index>-<timestamp>``.

    ``node_class`` is passed to the client as is (the tests use it to talk to an OpenSearch-API stand-in).
    """

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 index: str = "sohoa-documents", ca_file: str | None = None, timeout_s: float = 30.0,
                 node_class: Any = None) -> None:
        options: dict[str, Any] = {"request_timeout": timeout_s, "retry_on_timeout": True, "max_retries": 3}
        if password:
            options["basic_auth"] = (username or "elastic", password)
        if ca_file:
            options["ca_certs"] = ca_file
        if node_class is not None:
            options["node_class"] = node_class
        self.client = Elasticsearch(url, **options)
        self.alias = index
        self._ready = False
        self._lock = threading.Lock()

    # --- setup ---

    def _new_index_name(self) -> str:
        return f"{self.alias}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"

    def _ensure(self) -> None:
        """Create the first concrete index and its alias unless the alias (or a legacy index of that name) exists."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if not (self.client.indices.exists_alias(name=self.alias) or self.client.indices.exists(index=self.alias)):
                name = self._new_index_name()
                try:
                    self.client.indices.create(index=name, **index_body(),
                                               aliases={self.alias: {"is_write_index": True}})
                except ApiError:
                    if not self.client.indices.exists_alias(name=self.alias):  # not a lost race with another process
                        raise
            self._ready = True

    def _behind_alias(self) -> list[str]:
        try:
            return sorted(self.client.indices.get_alias(name=self.alias).body)
        except NotFoundError:
            return []

    # --- writes ---

    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        if not entries:
            return
        self._ensure()
        actions = ({"_index": self.alias, "_id": e.id, "_source": document_of(e)} for e in entries)
        helpers.bulk(self.client, actions, chunk_size=BULK_CHUNK, refresh="wait_for")

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        self._ensure()
        actions = ({"_op_type": "delete", "_index": self.alias, "_id": i} for i in ids)
        helpers.bulk(self.client, actions, chunk_size=BULK_CHUNK, refresh="wait_for", ignore_status=(404,))

    def replace_all(self, entries: Iterable[IndexEntry]) -> int:
        """Build ``<alias>-<timestamp>`` from ``entries``, then point the alias at it in one atomic alias update
        and delete the previous index. Readers see the old index until the swap; if loading fails, the new index
        is deleted and the old one stays. Writes made through the alias while it loads go to the old index and
        are lost with it: run a rebuild while nothing else indexes (``sohoa reindex``)."""
        self._ensure()
        name = self._new_index_name()
        self.client.indices.create(index=name, **index_body())
        try:
            count = 0
            actions = ({"_index": name, "_id": e.id, "_source": document_of(e)} for e in entries)
            for ok, _item in helpers.streaming_bulk(self.client, actions, chunk_size=BULK_CHUNK):
                count += 1 if ok else 0
            self.client.indices.refresh(index=name)
            old = self._behind_alias()
            swap: list[dict[str, Any]] = [{"remove": {"index": o, "alias": self.alias}} for o in old]
            if not old and self.client.indices.exists(index=self.alias):  # a concrete index under the alias name
                swap.append({"remove_index": {"index": self.alias}})
            swap.append({"add": {"index": name, "alias": self.alias, "is_write_index": True}})
            self.client.indices.update_aliases(actions=swap)
        except BaseException:
            self.client.indices.delete(index=name, ignore_unavailable=True)
            raise
        for o in old:
            self.client.indices.delete(index=o, ignore_unavailable=True)
        return count

    # --- reads ---

    def search(self, request: SearchRequest) -> SearchResult:
        self._ensure()
        return result_of(self._search(search_body(request)))

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.client.search(index=self.alias, body=body).body)

    def _all_ids(self) -> Iterator[str]:
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"query": {"match_all": {}}, "size": IDS_PAGE, "sort": [{"id": {"order": "asc"}}],
                                    "_source": False, "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = self.client.search(index=self.alias, body=body).body["hits"]["hits"]
            for hit in hits:
                yield hit["_id"]
            if len(hits) < IDS_PAGE:
                return
            after = hits[-1]["sort"]

    def ids(self) -> set[str]:
        self._ensure()
        return set(self._all_ids())

    def close(self) -> None:
        self.client.close()
