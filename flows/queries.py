"""Read paths shared by the CLI (and later the web app): show one document, search the archive."""

from __future__ import annotations

from flows.wiring import CATALOG_FILE, build_object_store
from schemas.document import DocumentManifest, SearchResult
from schemas.errors import NotFoundError
from schemas.metadata import CONTRACT_KEYS
from schemas.query import parse_query
from schemas.settings import Settings
from storage.catalog import SqliteCatalog
from storage.layout import MANIFEST, prefix_of
from storage.objects import ObjectStore


def open_catalog(settings: Settings) -> SqliteCatalog:
    root = settings.archive_path()
    if not (root / CATALOG_FILE).exists():
        raise NotFoundError(f"Chưa có kho lưu trữ tại {root}", fix="chạy sohoa digitise trước, hoặc chọn --archive")
    return SqliteCatalog(root / CATALOG_FILE)


def _open(settings: Settings) -> tuple[SqliteCatalog, ObjectStore]:
    catalog = open_catalog(settings)
    return catalog, build_object_store(settings)


def show_document(settings: Settings, doc_id: str) -> dict[str, object]:
    catalog, store = _open(settings)
    try:
        entry = catalog.get(doc_id.strip())
        if entry is None:
            raise NotFoundError(f"Không tìm thấy văn bản {doc_id}", fix="dùng sohoa search để tìm mã văn bản")
        manifest = DocumentManifest.model_validate_json(store.get_bytes(entry.manifest_key))
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
        "review_reasons": manifest.review_reasons,
        "pages": [{"number": p.number, "text": p.text, "confidence": p.confidence} for p in manifest.pages],
        "metadata": metadata,
        "files": files,
        "provenance": manifest.provenance,
    }


def search_archive(settings: Settings, query: str, *, limit: int = 10, offset: int = 0) -> SearchResult:
    catalog = open_catalog(settings)
    try:
        return catalog.search(parse_query(query), limit=max(0, min(limit, 1000)), offset=max(0, offset))
    finally:
        catalog.close()
