"""Read paths shared by the CLI (and later the web app): show one document, search the archive."""

from __future__ import annotations

from collections.abc import Mapping

from flows.access import TOP_LEVEL, Principal, catalog_levels, local_operator
from flows.wiring import archive_has_catalog, build_object_store, build_search_index, catalog_path
from flows.wiring import open_archive_catalog as open_catalog  # read paths: the archive must exist
from schemas.document import SearchResult
from schemas.errors import NotFoundError
from schemas.metadata import CONTRACT_KEYS
from schemas.reasons import codes_json, describe_all
from schemas.search import SearchFilters, SearchRequest, Sort
from schemas.settings import Settings
from storage.layout import MANIFEST, prefix_of
from storage.search_index import SearchIndex


def show_document(settings: Settings, doc_id: str, principal: Principal | None = None) -> dict[str, object]:
    """The document's contract view as ``principal`` (default: the local operator) may see it, with the
    archivists' corrections applied (``flows.review.load_document``: one policy for the CLI and the web;
    ``NotFoundError`` when it is missing OR above the principal's clearance)."""
    from flows.corrections import migrate_legacy
    from flows.review import load_document

    store = build_object_store(settings)
    if archive_has_catalog(settings):  # corrections an earlier version kept in web.sqlite3: into the store, once
        migrate_legacy(settings, store)
    view = load_document(settings, store, doc_id.strip(), principal or local_operator("sohoa"))
    if principal is not None:
        from flows.files import shown_filing  # its số thứ tự among the documents the principal sees

        view = shown_filing(settings, principal, view)
    manifest, edits = view.manifest, view.edits
    md = manifest.metadata.model_dump(mode="json")
    metadata = {k: md.get(k) for k in CONTRACT_KEYS} | {k: v for k, v in md.items() if k not in CONTRACT_KEYS}
    prefix = prefix_of(manifest.id)
    files: dict[str, object] = {"manifest": store.locate(prefix + MANIFEST)}
    for f in manifest.files:
        where = store.locate(prefix + f.key)
        if f.role == "pdfa":
            files["pdfa"] = where
        else:
            files.setdefault(f.role, [])
            bucket = files[f.role]
            assert isinstance(bucket, list)
            bucket.append(where)
    return {
        "id": manifest.id,
        "source": manifest.source,
        "batch": manifest.batch,
        "sha256": manifest.sha256,
        "status": manifest.status,  # as the reader sees it (``flows.access.visible_status``)
        "review_reasons": describe_all(manifest.review_reasons),  # the JSON contract: Vietnamese, codes beside
        "review_reason_codes": codes_json(manifest.review_reasons),
        "pages": [{"number": p.number, "text": p.text, "confidence": p.confidence} for p in manifest.pages],
        "metadata": metadata,
        "files": files,
        "provenance": manifest.provenance,
        "corrections": [{"version": e.id, "field": e.field, "before": e.before, "after": e.after,
                         "username": e.username, "at": e.at} for e in edits],
    }


def open_search_index(settings: Settings) -> SearchIndex:
    """The archive's search index (``flows.wiring.build_search_index``); the embedded one needs an archive."""
    if settings.search_index == "sqlite" and settings.database_url is None and not catalog_path(settings).exists():
        root = settings.archive_path()
        raise NotFoundError(f"Chưa có kho lưu trữ tại {root}", fix="chạy sohoa digitise trước, hoặc chọn --archive")
    return build_search_index(settings)


_FILTER_ALIASES = {"organ": "organ_name", "type": "type_name"}


def search_filters(filters: SearchFilters | Mapping[str, object] | None) -> SearchFilters:
    """``SearchFilters`` from a model or a plain mapping (JSON): a single value where a list is expected is a
    one-value list, ``organ``/``type`` are ``organ_name``/``type_name``, ``year`` is ``year_from`` = ``year_to``."""
    if filters is None:
        return SearchFilters()
    if isinstance(filters, SearchFilters):
        return filters
    data: dict[str, object] = {}
    for key, value in filters.items():
        name = _FILTER_ALIASES.get(key, key)
        if name == "year":
            data["year_from"] = data["year_to"] = value
        elif name in ("type_name", "organ_name", "classification", "batch", "file_code") and isinstance(value, str):
            data[name] = [value]
        else:
            data[name] = value
    return SearchFilters.model_validate(data)


def search_archive(
    settings: Settings,
    query: str,
    *,
    limit: int = 10,
    offset: int = 0,
    filters: SearchFilters | Mapping[str, object] | None = None,
    sort: Sort = "relevance",
    clearance: int = 3,
    facets: bool = False,
) -> SearchResult:
    """Search the archive. ``clearance``: the highest secrecy level the caller may see (the CLI is a local,
    trusted user: every level)."""
    request = SearchRequest(query=query, filters=search_filters(filters), sort=sort, limit=max(0, min(limit, 1000)),
                            offset=max(0, min(offset, 100_000)), clearance=clearance, facets=facets)
    index = open_search_index(settings)
    try:
        result = index.search(request)
    finally:
        index.close()
    if clearance >= TOP_LEVEL:
        return result
    # a relevance score carries term statistics of every indexed document, hidden ones included (a lower score
    # tells that a hidden document holds the word): a restricted reader gets the order, not the numbers
    return result.model_copy(update={"hits": [h.model_copy(update={"score": 0.0}) for h in result.hits]})


__all__ = ["catalog_levels", "open_catalog", "search_archive", "show_document"]
