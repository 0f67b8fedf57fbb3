"""Query hits on the page scans of a document a person may see: the word boxes of its stored hOCR.

Only reachable with a ``flows.review.DocumentView``, which ``flows.review.load_document`` gives after the access
policy (``flows.access``) let the principal see the document: there is no path from a document id to its hOCR
here. The hOCR keys come from the document's manifest (``files`` with role ``hocr``), never from a request.

Boxes always come from the hOCR, the machine reading of the page: when an archivist corrected a page's text, the
corrected text is shown beside the image, but the boxes over the image stay those of the words the OCR read there
(a correction has no positions). A page whose hOCR is missing, unreadable or malformed has no boxes: the page
is shown without them (logged), never an error.

Parsed pages are kept in a small cache per object store (an app's store), keyed by the document id and the hOCR's
SHA-256 from the manifest; it is only consulted after the policy check that gave the view, and a page that could
not be read is not cached (read again next time).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Set

from flows.review import DocumentView
from ocr_models.hocr import words_from_hocr
from pipeline.hits import HitBox, PageWords, hit_boxes, matching_words, page_words
from storage.layout import prefix_of
from storage.objects import ObjectStore, safe_key

__all__ = ["HitBox", "hit_counts", "hocr_key", "page_hit_boxes", "page_words_of"]

log = logging.getLogger("sohoa.hits")

_CACHE_PAGES = 512
_MAX_HOCR_BYTES = 32 * 2**20  # far above any page sohoa writes; a bigger object is not parsed
_caches: weakref.WeakKeyDictionary[object, OrderedDict[tuple[str, str], PageWords]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def hocr_key(number: int) -> str:
    """The key of page ``number``'s hOCR within the document's prefix (``storage.layout``)."""
    return f"pages/{number:04d}.hocr"


def page_words_of(store: ObjectStore, view: DocumentView, number: int) -> PageWords | None:
    """Page ``number``'s words and boxes from its stored hOCR; ``None`` when it has none that can be used."""
    doc_id = view.manifest.id
    stored = next((f for f in view.manifest.files if f.role == "hocr" and f.key == hocr_key(number)), None)
    if stored is None:
        return None
    cache_key = (doc_id, stored.sha256)
    with _lock:
        cache = _caches.setdefault(store, OrderedDict())
        if cache_key in cache:
            cache.move_to_end(cache_key)
            return cache[cache_key]
    words = _read(store, doc_id, stored.key)
    if words is not None:
        with _lock:
            cache[cache_key] = words
            while len(cache) > _CACHE_PAGES:
                cache.popitem(last=False)
    return words


def _read(store: ObjectStore, doc_id: str, key: str) -> PageWords | None:
    try:
        data = store.get_bytes(safe_key(prefix_of(doc_id) + key))
        if len(data) > _MAX_HOCR_BYTES:
            raise ValueError(f"{len(data)} bytes")
        words, size = words_from_hocr(data.decode("utf-8"))
        return page_words(words, size)
    except Exception as exc:  # missing, unreachable, not UTF-8, malformed: the page is shown without boxes
        log.warning("document %s: no word boxes from %s (%s: %s)", doc_id, key, type(exc).__name__, exc)
        return None


def hit_counts(store: ObjectStore, view: DocumentView, wanted: Set[str]) -> dict[int, int]:
    """The number of matched words (boxes) on each page of the document (pages without hOCR count 0)."""
    if not wanted:
        return {}
    out = {}
    for page in view.manifest.pages:
        words = page_words_of(store, view, page.number)
        out[page.number] = len(matching_words(words, wanted)) if words is not None else 0
    return out


def page_hit_boxes(store: ObjectStore, view: DocumentView, number: int, wanted: Set[str]) -> list[HitBox]:
    """The boxes to draw over page ``number``'s image for the wanted (folded) words; none without usable hOCR."""
    words = page_words_of(store, view, number) if wanted else None
    return hit_boxes(words, wanted) if words is not None else []
