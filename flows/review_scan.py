"""Review beside the scan, the use cases: the doubtful lines of a document's pages (from their stored hOCR) and
the correction of one line, recorded as a correction of the page's text (``flows.review.apply_changes``:
versioned in the object store, audited, re-indexed at once).

Only reachable with a ``flows.review.DocumentView`` (the access policy already let the principal see the
document) or, for a correction, through ``apply_changes``, which loads the document through the policy again. The
hOCR key comes from the manifest (``flows.page_hits.hocr_key``), never from a request.
"""

from __future__ import annotations

import logging

from flows.corrections import EditError
from flows.page_hits import hocr_key
from flows.review import DocumentView, Reviewer, apply_changes, load_document, not_found
from ocr_models.hocr import words_from_hocr
from pipeline.review_scan import Box, DoubtfulLine, LineChanged, crop_jpeg, doubtful_lines, replace_line
from schemas.ocr import OcrWord
from storage.layout import prefix_of
from storage.objects import ObjectStore, safe_key

__all__ = ["Box", "DoubtfulLine", "correct_line", "crop_jpeg", "document_doubtful_lines", "page_words"]

log = logging.getLogger("sohoa.review")

_MAX_HOCR_BYTES = 32 * 2**20
LINE_CHANGED = "Dòng này vừa được sửa trong nội dung trang: tải lại trang để xem bản mới rồi sửa lại"


def page_words(store: ObjectStore, view: DocumentView, number: int) -> list[OcrWord]:
    """Page ``number``'s words (with confidences) from its stored hOCR; none when it has no usable hOCR."""
    stored = next((f for f in view.manifest.files if f.role == "hocr" and f.key == hocr_key(number)), None)
    if stored is None:
        return []
    try:
        data = store.get_bytes(safe_key(prefix_of(view.manifest.id) + stored.key))
        if len(data) > _MAX_HOCR_BYTES:
            raise ValueError(f"{len(data)} bytes")
        return words_from_hocr(data.decode("utf-8"))[0]
    except Exception as exc:  # missing, not UTF-8, malformed: the page is reviewed without doubtful lines
        log.warning("document %s: no doubtful lines from %s (%s: %s)", view.manifest.id, stored.key,
                    type(exc).__name__, exc)
        return []


def document_doubtful_lines(store: ObjectStore, view: DocumentView) -> list[DoubtfulLine]:
    """The doubtful lines of every page, page by page, least confident first within a page."""
    out: list[DoubtfulLine] = []
    for page in view.manifest.pages:
        out.extend(doubtful_lines(page.number, page_words(store, view, page.number), page.text))
    return out


def correct_line(reviewer: Reviewer, doc_id: str, page: int, index: int, expected: str, text: str, *,
                 version: int | None) -> list[str]:
    """Replace line ``index`` of page ``page`` (which read ``expected`` in the form) with ``text``; the page's new
    text is saved as a correction of ``page.<n>``. ``EditError`` (``VersionConflict``) when the document was
    corrected since ``version`` or the line no longer reads ``expected``; ``NotFoundError`` for a document the
    reviewer may not see, or a page it does not have."""
    view = load_document(reviewer.settings, reviewer.store, doc_id, reviewer.user.principal)
    current = next((p for p in view.manifest.pages if p.number == page), None)
    if current is None:
        raise not_found()
    try:
        new_text = replace_line(current.text, index, expected, text)
    except LineChanged as exc:
        raise EditError(LINE_CHANGED) from exc
    return apply_changes(reviewer, doc_id, {f"page.{page}": new_text}, version=version)
