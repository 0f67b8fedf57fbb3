"""Search index port: what every search backend (``search_sqlite``, ``search_es``) provides.

The index is a cache of the manifests: ``entry_of`` turns a stored manifest into the ``IndexEntry`` a backend
holds; ``replace_all`` rebuilds a whole index from them (``sohoa reindex``). Backends fold text with
``schemas.text.fold`` (or mirror it exactly: Elasticsearch's analyzers, checked by a golden test) and apply the
caller's clearance inside their query.

The backend is chosen once, in the composition root (``flows.wiring``: ``build_search_index`` for searches,
``catalog_indexer`` for writes). The embedded index is written by the catalog, inside the transaction of a
document's catalog row (``storage.catalog.IndexWriter``, implemented by ``search_sqlite.SqliteIndexWriter``);
Elasticsearch is written through ``upsert``/``delete``/``replace_all`` by the flows, and then the catalog writes
no full-text rows at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from schemas.document import DocumentManifest, SearchResult
from schemas.search import IndexEntry, SearchRequest, secrecy_level
from schemas.text import nfc


class SearchIndex(Protocol):
    def upsert(self, entries: Sequence[IndexEntry]) -> None:
        """Add or replace documents (by id); visible to searches when this returns."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def replace_all(self, entries: Iterable[IndexEntry]) -> int:
        """Make the index hold exactly ``entries`` (readers see the old index until the new one is complete)."""

    def search(self, request: SearchRequest) -> SearchResult: ...

    def ids(self) -> set[str]:
        """Every indexed document id (for audits: index entries without a stored document)."""

    def close(self) -> None: ...


def entry_of(manifest: DocumentManifest) -> IndexEntry:
    md = manifest.metadata.model_dump(mode="json", exclude={"evidence"})
    issued = md.get("issued_date") if isinstance(md.get("issued_date"), str) else None
    year = int(issued[:4]) if issued and issued[:4].isdigit() else None
    return IndexEntry(
        id=manifest.id,
        source=manifest.source,
        batch=manifest.batch,
        file_code=manifest.file_code,
        status=manifest.status,
        metadata=md,
        text=nfc("\n\n".join(p.text for p in manifest.pages)),
        issued_date=issued,
        year=year,
        secrecy_level=secrecy_level(manifest.metadata.classification),
    )
