"""Cross-references: which archived document a citation in page text names, and which documents cite one — always
as a reader of a given clearance sees the archive.

Both go through the search port (``storage.search_index.SearchIndex``) with the reader's clearance, which the
backend applies inside its query (``schemas.search``): a document above it is never among the hits, so nothing
here can tell it exists. A citation is resolved by a số/ký hiệu lookup (``Citation.query``: the index's code
tier, ``schemas.query.code_key``), filtered by year when the citation gives one; the hits whose own số/ký hiệu is
the cited one (the year inside a state number ignored on both sides) are its matches: one → a link to it; several
→ a search for the number; none → plain text (exactly as for a document above the reader's clearance).

"Cited by" searches the document's số/ký hiệu over the text of the documents the reader sees, then reads each
candidate through the access policy (``flows.review.load_document``) and keeps those whose text holds a citation
of this document (same key; the same year when the citation gives one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flows.access import Principal
from flows.queries import open_search_index
from flows.review import load_document
from pipeline.citations import Citation, find_citations, segments
from schemas.document import DocumentManifest, SearchHit
from schemas.errors import NotFoundError
from schemas.query import code_key
from schemas.search import SearchFilters, SearchRequest
from schemas.settings import Settings
from storage.objects import ObjectStore

MATCH_LIMIT = 20  # hits read per citation lookup (the code tier comes first)
MAX_LOOKUPS = 40  # distinct citations resolved on one page; the others stay plain text
CANDIDATES = 40  # documents read per "cited by" search
CITED_BY_LIMIT = 20  # citers listed


@dataclass(frozen=True)
class Target:
    """Where a citation leads: one visible document (``doc_id``), or a search (``query``, ``year``)."""

    doc_id: str | None = None
    query: str | None = None
    year: int | None = None


def base_key(key: str | None) -> str | None:
    """A số/ký hiệu key without a year part (``45 2024 nd cp`` → ``45 nd cp``), as the header reader stores it."""
    if key is None:
        return None
    parts = key.split()
    if len(parts) > 2 and len(parts[1]) == 4 and parts[1].isdigit() and parts[0].isdigit():
        parts = [parts[0], *parts[2:]]
    return " ".join(parts)


def _metadata_key(metadata: dict[str, object]) -> str | None:
    return base_key(code_key(metadata.get("code_number"), metadata.get("code_notation")))


def _year(metadata: dict[str, object]) -> int | None:
    issued = metadata.get("issued_date")
    return int(issued[:4]) if isinstance(issued, str) and issued[:4].isdigit() else None


def matches(citation: Citation, hits: Iterable[SearchHit]) -> list[SearchHit]:
    """The hits that are the cited document: its số/ký hiệu, its year when the citation gives one; with a full
    date, those issued that day when there are any."""
    key = base_key(citation.key)
    found = [h for h in hits if _metadata_key(h.metadata) == key
             and (citation.year is None or _year(h.metadata) == citation.year)]
    if citation.date and len(found) > 1:
        same_day = [h for h in found if h.metadata.get("issued_date") == citation.date]
        found = same_day or found
    return list({h.id: h for h in found}.values())


def target_of(citation: Citation, hits: Sequence[SearchHit]) -> Target | None:
    found = matches(citation, hits)
    if not found:
        return None
    if len(found) == 1:
        return Target(doc_id=found[0].id)
    return Target(query=citation.query, year=citation.year)


def _lookup(citation: Citation) -> tuple[str, int | None, str | None]:
    return base_key(citation.key) or citation.key, citation.year, citation.date


def resolve(settings: Settings, citations: Sequence[Citation], clearance: int) -> dict[Citation, Target]:
    """The citations that lead somewhere for a reader of ``clearance`` (the others are absent)."""
    if not citations:
        return {}
    out: dict[Citation, Target] = {}
    done: dict[tuple[str, int | None, str | None], Target | None] = {}
    index = open_search_index(settings)
    try:
        for citation in citations:
            lookup = _lookup(citation)
            if lookup not in done:
                if len(done) >= MAX_LOOKUPS:
                    continue
                year = citation.year
                filters = SearchFilters(year_from=year, year_to=year) if year else SearchFilters()
                result = index.search(SearchRequest(query=citation.query, filters=filters, limit=MATCH_LIMIT,
                                                    clearance=clearance))
                done[lookup] = target_of(citation, result.hits)
            target = done[lookup]
            if target is not None:
                out[citation] = target
    finally:
        index.close()
    return out


def cites(citation: Citation, key: str, year: int | None) -> bool:
    """Does ``citation`` name the document of (base) key ``key`` issued in ``year``?"""
    return base_key(citation.key) == key and (citation.year is None or citation.year == year)


def _queries(number: str, notation: str, year: int | None) -> list[str]:
    party = "/" in notation
    out = [f"{number}{'-' if party else '/'}{notation}"]
    if year and not party:  # a state number cited with its year: 45/2024/NĐ-CP
        out.append(f"{number}/{year}/{notation}")
    return out


def cited_by(settings: Settings, store: ObjectStore, manifest: DocumentManifest, principal: Principal,
             limit: int = CITED_BY_LIMIT) -> list[DocumentManifest]:
    """The documents ``principal`` may see whose text cites ``manifest`` (not itself), as they see them."""
    md = manifest.metadata
    key = base_key(code_key(md.code_number, md.code_notation))
    if key is None or not md.code_number or not md.code_notation:
        return []
    year = _year({"issued_date": md.issued_date})
    seen: dict[str, None] = {}
    index = open_search_index(settings)
    try:
        for query in _queries(str(md.code_number), str(md.code_notation), year):
            result = index.search(SearchRequest(query=query, limit=CANDIDATES, clearance=principal.clearance))
            seen.update((h.id, None) for h in result.hits if h.id != manifest.id)
    finally:
        index.close()
    out: list[DocumentManifest] = []
    for doc_id in seen:
        try:
            other = load_document(settings, store, doc_id, principal).manifest  # the policy, once more
        except NotFoundError:
            continue
        if any(cites(c, key, year) for page in other.pages for c in find_citations(page.text)):
            out.append(other)
            if len(out) >= limit:
                break
    return out


__all__ = ["Citation", "Target", "cited_by", "find_citations", "resolve", "segments"]
