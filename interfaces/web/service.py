"""What the web pages and the REST API do, in one place: read documents within the user's clearance, search,
serve page images and stored files.

No path from a request reaches the filesystem or the store: a request names a document id and a page or file
NUMBER; the keys come from the catalog and the manifest. A document that does not exist and one above the
user's clearance are the same ``NotFoundError``.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pikepdf

from flows.access_requests import active_grants, with_grants
from flows.accounts import Accounts, User
from flows.audit import open_audit
from flows.corrections import migrate_legacy
from flows.queries import catalog_levels, open_catalog, search_archive
from flows.review import DocumentView, not_found
from flows.review import load_document as review_load
from flows.wiring import build_object_store, open_accounts_db
from interfaces.web.config import WebSettings
from schemas.document import SearchResult, StoredFile
from schemas.search import SearchFilters, Sort
from schemas.settings import Settings
from storage.accounts_db import WebDb
from storage.audit import AuditLog
from storage.layout import prefix_of
from storage.objects import DirectoryObjectStore, ObjectMissing, ObjectStore, safe_key

CACHE_DIR = "work/web-cache"
_KEEP_CACHED_FILES = 64


@dataclass
class WebState:
    """Everything a request needs, built once by ``create_app``."""

    settings: Settings
    web: WebSettings
    db: WebDb
    accounts: Accounts
    store: ObjectStore
    audit: AuditLog
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # grants' expiry (tests inject one)
    _images: OrderedDict[tuple[str, str, int], bytes] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings, web: WebSettings) -> WebState:
        db = open_accounts_db(settings)
        accounts = Accounts(db, session_s=web.web_session_hours * 3600, attempts=web.web_login_attempts,
                            window_s=web.web_login_window_s)
        store = build_object_store(settings)
        migrate_legacy(settings, store)  # corrections an earlier version kept in web.sqlite3: into the store, once
        return cls(settings=settings, web=web, db=db, accounts=accounts, store=store, audit=open_audit(settings))


def load_document(state: WebState, doc_id: str, user: User) -> DocumentView:
    """The document as ``user`` may see it (``flows.review.load_document``): missing OR above the user's clearance
    is the same ``NotFoundError``."""
    return review_load(state.settings, state.store, doc_id, user.principal)


def read_document(state: WebState, doc_id: str, user: User) -> DocumentView:
    """The document for READING ONLY (its page, page images, PDF/A): like ``load_document``, and also when the user
    holds an active access grant for it (``flows.access_requests.with_grants``, ``Principal.may_read``); the view
    is then ``granted``. Never used for editing, originals or listings."""
    catalog = open_catalog(state.settings)
    try:  # a grant counts only while its document is still within its approver's clearance (``active_grants``)
        principal = with_grants(state.db, user, state.clock(), catalog_levels(catalog))
    finally:
        catalog.close()
    return review_load(state.settings, state.store, doc_id, principal)


def active_grant_ids(state: WebState, username: str) -> frozenset[str]:
    """The documents ``username`` may read now through a grant (``flows.access_requests.active_grants``)."""
    catalog = open_catalog(state.settings)
    try:  # the levels read the catalog lazily: used before it closes
        return active_grants(state.db, username, state.clock(), catalog_levels(catalog))
    finally:
        catalog.close()


def search(state: WebState, user: User, query: str, *, filters: SearchFilters | None = None,
           sort: Sort = "relevance", limit: int = 10, offset: int = 0, facets: bool = False) -> SearchResult:
    """``flows.queries.search_archive`` with the user's clearance applied inside the index."""
    return search_archive(state.settings, query[:2000], limit=limit, offset=offset, filters=filters, sort=sort,
                          clearance=user.clearance, facets=facets)


def local_file(state: WebState, doc_id: str, stored: StoredFile) -> Path:
    """A local file holding a stored object of a document (the object itself for the directory store, a
    cached copy named by its checksum otherwise)."""
    key = safe_key(prefix_of(doc_id) + stored.key)
    if isinstance(state.store, DirectoryObjectStore):
        path = state.store.root / key
        if not path.is_file():
            raise not_found()
        return path
    cache = state.settings.archive_path() / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{stored.sha256}{Path(stored.key).suffix.lower()[:8]}"
    if not path.is_file():
        try:
            state.store.get_file(key, path)
        except ObjectMissing as exc:
            raise not_found() from exc
        cached = sorted(cache.iterdir(), key=lambda p: p.stat().st_mtime)
        for old in cached[:-_KEEP_CACHED_FILES]:
            old.unlink(missing_ok=True)
    return path


def page_image(state: WebState, view: DocumentView, number: int) -> bytes:
    """The JPEG of page ``number`` (1-based): the image layer of the stored PDF/A, as stored (no re-encoding
    when it is a JPEG, which is what sohoa writes)."""
    pdfa = view.pdfa
    if pdfa is None or not 1 <= number <= len(view.manifest.pages):
        raise not_found()
    key = (view.manifest.id, pdfa.sha256, number)
    with state._lock:
        if key in state._images:
            state._images.move_to_end(key)
            return state._images[key]
    data = _extract_page_jpeg(local_file(state, view.manifest.id, pdfa), number)
    with state._lock:
        state._images[key] = data
        while len(state._images) > 48:
            state._images.popitem(last=False)
    return data


def _extract_page_jpeg(pdf_path: Path, number: int) -> bytes:
    with pikepdf.open(pdf_path) as pdf:
        if number > len(pdf.pages):
            raise not_found()
        images = list(pdf.pages[number - 1].images.values())
        if not images:
            raise not_found()
        best = max(images, key=lambda im: int(im.get("/Width", 0)) * int(im.get("/Height", 0)))
        if best.get("/Filter") == pikepdf.Name.DCTDecode:
            return bytes(best.read_raw_bytes())
        pil = pikepdf.PdfImage(cast(pikepdf.Stream, best)).as_pil_image()
    out = io.BytesIO()
    pil.convert("RGB" if pil.mode not in ("L", "RGB") else pil.mode).save(out, "JPEG", quality=85)
    return out.getvalue()

