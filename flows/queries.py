"""Read paths shared by the CLI (and later the web app): show one document, search the archive."""

from __future__ import annotations

from collections.abc import Mapping

from flows.wiring import CATALOG_FILE, build_object_store, build_search_index
from pipeline.quality import duplicate_of
from schemas.document import DocumentManifest, SearchResult
from schemas.errors import NotFoundError
from schemas.metadata import CONTRACT_KEYS
from schemas.search import SearchFilters, SearchRequest, Sort, secrecy_level
from schemas.settings import Settings
from storage.catalog import SqliteCatalog
from storage.layout import MANIFEST, prefix_of
from storage.objects import ObjectStore
from storage.search_index import SearchIndex


def open_catalog(settings: Settings) -> SqliteCatalog:
    root = settings.archive_path()
    if not (root / CATALOG_FILE).exists():
        raise NotFoundError(f"Chưa có kho lưu trữ tại {root}", fix="chạy sohoa digitise trước, hoặc chọn --archive")
    return SqliteCatalog(root / CATALOG_FILE)


def _open(settings: Settings) -> tuple[SqliteCatalog, ObjectStore]:
    catalog = open_catalog(settings)
    return catalog, build_object_store(settings)


def visible_reasons(reasons: list[str], clearance: int, catalog: SqliteCatalog) -> list[str]:
    """Review reasons a caller of ``clearance`` may read: a possible duplicate is named only when the caller may
    see that other document (its id, its source and even its existence are otherwise withheld)."""
    out = []
    for reason in reasons:
        other = duplicate_of(reason)
        if other is not None:
            entry = catalog.get(other)
            classification = entry.metadata.get("classification") if entry is not None else None
            if entry is None or secrecy_level(classification if isinstance(classification, str) else None) > clearance:
                continue
        out.append(reason)
    return out


def show_document(settings: Settings, doc_id: str, *, clearance: int = 3) -> dict[str, object]:
    """The document's contract view; ``NotFoundError`` when it is missing OR above ``clearance`` (one message)."""
    missing = NotFoundError(f"Không tìm thấy văn bản {doc_id}", fix="dùng sohoa search để tìm mã văn bản")
    catalog, store = _open(settings)
    try:
        entry = catalog.get(doc_id.strip())
        if entry is None:
            raise missing
        manifest = DocumentManifest.model_validate_json(store.get_bytes(entry.manifest_key))
        if secrecy_level(manifest.metadata.classification) > clearance:
            raise missing
        reasons = visible_reasons(manifest.review_reasons, clearance, catalog)
    finally:
        catalog.close()
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
        "status": manifest.status,
        "review_reasons": reasons,
        "pages": [{"number": p.number, "text": p.text, "confidence": p.confidence} for p in manifest.pages],
        "metadata": metadata,
        "files": files,
        "provenance": manifest.provenance,
    }


def open_search_index(settings: Settings) -> SearchIndex:
    """The archive's search index (``flows.wiring.build_search_index``); the embedded one needs an archive."""
    if settings.search_index == "sqlite" and not (settings.archive_path() / CATALOG_FILE).exists():
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
        return index.search(request)
    finally:
        index.close()
