"""The search contract shared by every search backend (embedded SQLite FTS5, Elasticsearch) and every caller.

A caller builds a ``SearchRequest`` (query text, filters, sort, page, the caller's clearance); a backend returns a
``schemas.document.SearchResult`` whose hits, total and facet counts include only documents the caller may see:
the access filter is applied inside the backend query, never by the caller afterwards.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

# Secrecy levels (Luật Bảo vệ bí mật nhà nước): a document's level comes from its classification; a user's
# clearance is the highest level they may read. An uncertain mark keeps the extracted level (classified until an
# archivist confirms).
SECRECY_LEVELS: dict[str | None, int] = {None: 0, "Mật": 1, "Tối mật": 2, "Tuyệt mật": 3}
UNCLASSIFIED = "Thường"  # facet value and filter value for documents without a secrecy mark
FACET_FIELDS = ("type_name", "year", "organ_name", "classification", "batch", "file_code")

Sort = Literal["relevance", "date_desc", "date_asc"]


def secrecy_level(classification: str | None) -> int:
    """0 for an open document; an unknown non-empty mark counts as the highest level (never as open)."""
    return SECRECY_LEVELS.get(classification, 3)


class SearchFilters(BaseModel):
    """Every list is "any of"; fields combine with AND. Values are matched exactly as stored (NFC)."""

    type_name: list[str] = Field(default_factory=list)
    organ_name: list[str] = Field(default_factory=list)
    classification: list[str] = Field(default_factory=list)  # "Mật", "Tối mật", "Tuyệt mật", UNCLASSIFIED
    batch: list[str] = Field(default_factory=list)
    file_code: list[str] = Field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    date_from: date | None = None  # issued_date, inclusive
    date_to: date | None = None


class SearchRequest(BaseModel):
    query: str = ""  # the user's text (parsed by schemas.query.parse_query); empty = every visible document
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: Sort = "relevance"
    limit: int = Field(default=10, ge=0, le=1000)
    offset: int = Field(default=0, ge=0, le=100_000)
    clearance: int = Field(default=0, ge=0, le=3)  # highest secrecy level the caller may see
    facets: bool = False  # compute facet counts (FACET_FIELDS) over every visible match


class FacetCount(BaseModel):
    value: str
    count: int


class IndexEntry(BaseModel):
    """What a search backend holds for one document (built from its manifest by ``storage.search_index``)."""

    id: str
    source: str
    batch: str
    file_code: str | None = None
    status: str
    metadata: dict[str, object]  # contract metadata (schemas.metadata.CONTRACT_KEYS and additions), no evidence
    text: str  # the pages' text in logical order, NFC, pages separated by a blank line
    issued_date: str | None = None  # ISO
    year: int | None = None
    secrecy_level: int = 0
