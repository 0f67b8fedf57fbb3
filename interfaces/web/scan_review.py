"""Review beside the scan (archivists): crops of the page image (a metadata field's evidence, a doubtful line),
the correction of one doubtful line, and the step to the next document of the review queue.

Every route loads the document through the access policy first (``service.load_document``: missing and above the
user's clearance are the same ``NotFoundError``), so a crop or a line of a document the user may not see answers
exactly like one of a document that does not exist. A crop is a part of the page image the user may already see
whole (``pages.page_image_route``); its box is in pixels of the OCR image (the manifest's page size), scaled to the
stored page image, and cut server-side (the CSP allows no inline styles).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from flows.access import Rule, access_rule
from flows.accounts import User
from flows.corrections import EDITABLE_METADATA
from flows.review import DocumentView
from flows.review_scan import Box, correct_line, crop_jpeg, document_doubtful_lines
from interfaces.web.auth import Session, audit, check_csrf, current_session, reader, require_role, state_of
from interfaces.web.review import review_queue, reviewer_of
from interfaces.web.service import WebState, load_document, page_image

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
ReaderDep = Annotated[User, Depends(reader)]

_BOX_RE = re.compile(r"^(\d{1,6}),(\d{1,6}),(\d{1,6}),(\d{1,6})$")


def crop_url(doc_id: str, page: int, box: Box) -> str:
    return f"/documents/{doc_id}/pages/{page}/crop?box={box[0]},{box[1]},{box[2]},{box[3]}"


def scan_context(state: WebState, view: DocumentView) -> dict[str, object]:
    """What ``review_edit.html`` shows beside the fields: each field's evidence crop (none without a box), the
    doubtful lines with their crops, the page images and the link to the next document."""
    manifest = view.manifest
    pages = {p.number for p in manifest.pages}
    crops = {}
    for key in EDITABLE_METADATA:
        evidence = manifest.metadata.evidence.get(key)
        if evidence is not None and evidence.box is not None and evidence.page in pages:
            assert evidence.page is not None
            crops[key] = {"url": crop_url(manifest.id, evidence.page, evidence.box), "page": evidence.page,
                          "raw": evidence.raw or "", "confidence": evidence.confidence}
    lines = [{"line": d, "url": crop_url(manifest.id, d.page, d.box)}
             for d in document_doubtful_lines(state.store, view)]
    return {"crops": crops, "doubtful": lines, "next_url": f"/review/{manifest.id}/next"}


def _box(text: str) -> Box:
    m = _BOX_RE.match(text)
    if m is None:
        raise HTTPException(422, "Vùng cắt không hợp lệ")
    x0, y0, x1, y1 = (int(g) for g in m.groups())
    if x1 <= x0 or y1 <= y0:
        raise HTTPException(422, "Vùng cắt không hợp lệ")
    return (x0, y0, x1, y1)


@router.get("/documents/{doc_id}/pages/{number}/crop")
@access_rule(Rule.DOCUMENT)
def crop_route(request: Request, doc_id: str, number: int, user: ReaderDep, box: str = "") -> Response:
    state = state_of(request)
    view = load_document(state, doc_id, user)  # the policy first: hidden == missing, whatever the box
    region = _box(box)
    record = next((p for p in view.manifest.pages if p.number == number), None)
    if record is None:
        raise HTTPException(404)
    data = crop_jpeg(page_image(state, view, number), region, (record.width, record.height))
    if data is None:
        raise HTTPException(404)
    audit(request, user.username, "page.crop", view.manifest.id, {"page": number, "box": list(region)})
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


def _int(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 9 else None


@router.post("/review/{doc_id}/line")
@access_rule(Rule.DOCUMENT)
async def save_line(request: Request, doc_id: str, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    form = await request.form()
    check_csrf(session.csrf, str(form.get("csrf_token", "")))
    page, index = _int(form.get("page")), _int(form.get("index"))
    if page is None or index is None:
        raise HTTPException(422, "Tham số không hợp lệ: page, index")
    version = _int(form.get("version"))
    state = state_of(request)
    changed = await run_in_threadpool(
        correct_line, reviewer_of(state, session.user), doc_id, page, index, str(form.get("expected", "")),
        str(form.get("text", ""))[:2000], version=version)
    if changed:
        audit(request, session.user.username, "document.edit", doc_id, {"fields": changed, "line": index})
    return RedirectResponse(f"/review/{doc_id}?saved={len(changed)}#line-{page}-{index}", status_code=303)


@router.get("/review/{doc_id}/next")
@access_rule(Rule.LISTING)
def next_document(request: Request, doc_id: str, session: SessionDep) -> Response:
    """The document after ``doc_id`` in the user's review queue (the first one when ``doc_id`` is not in it, e.g.
    just reviewed); the queue itself when it is empty. Only ids of the user's own queue are ever named."""
    require_role(session.user, "archivist")
    ids = [item.entry.id for item in review_queue(state_of(request), session.user)]
    others = [i for i in ids if i != doc_id]
    if not others:
        return RedirectResponse("/review", status_code=303)
    target = others[0]
    if doc_id in ids:
        after = ids[ids.index(doc_id) + 1:]
        target = after[0] if after else others[0]
    return RedirectResponse(f"/review/{target}", status_code=303)
