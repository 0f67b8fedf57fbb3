"""Pages of the review queue (archivists and admins): documents needing review, the correction form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from flows.access import Rule, access_rule
from flows.approvals import pending_for_document
from flows.corrections import CHOICES, EDITABLE_METADATA, EditError, current_value
from flows.files import shown_filing
from interfaces.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from interfaces.web.render import render
from interfaces.web.review import apply_changes, last_version, review_queue
from interfaces.web.scan_review import scan_context
from interfaces.web.service import load_document

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]


@router.get("/review")
@access_rule(Rule.LISTING)
def queue_page(request: Request, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    items = review_queue(state_of(request), session.user)
    audit(request, session.user.username, "review.list", "", {"shown": len(items)})
    return render(request, "review_list.html", {"items": items}, session=session)


def _form_page(request: Request, session: Session, doc_id: str, *, error: str = "", saved: int = 0,
               submitted: dict[str, object] | None = None, status: int = 200) -> Response:
    view = load_document(state_of(request), doc_id, session.user)
    values = {}
    for key in EDITABLE_METADATA:
        field = f"metadata.{key}"
        value = (submitted or {}).get(field, current_value(view.manifest, field))
        values[key] = "\n".join(value) if isinstance(value, list) else ("" if value is None else str(value))
    pages = [{"number": p.number, "confidence": p.confidence,
              "text": str((submitted or {}).get(f"page.{p.number}", p.text))} for p in view.manifest.pages]
    return render(request, "review_edit.html", {
        "view": view, "doc": view.manifest, "fields": EDITABLE_METADATA, "values": values, "choices": CHOICES,
        "pages": pages, "error": error, "saved": saved,
        "edits": list(reversed(shown_filing(state_of(request).settings, session.user.principal, view).edits)),
        "version": last_version(view), "held": pending_for_document(state_of(request).db, doc_id),
        **scan_context(state_of(request), view),  # review beside the scan (interfaces/web/scan_review.py)
    }, session=session, status=status)


@router.get("/review/{doc_id}")
@access_rule(Rule.DOCUMENT)
def edit_page(request: Request, doc_id: str, session: SessionDep, saved: int = 0) -> Response:
    require_role(session.user, "archivist")
    response = _form_page(request, session, doc_id, saved=saved)  # NotFoundError (audited by the app) first
    audit(request, session.user.username, "review.view", doc_id)
    return response


@router.post("/review/{doc_id}")
@access_rule(Rule.DOCUMENT)
async def save_edits(request: Request, doc_id: str, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    form = await request.form()
    check_csrf(session.csrf, str(form.get("csrf_token", "")))
    submitted: dict[str, object] = {}
    for key in EDITABLE_METADATA:
        if f"md_{key}" in form:
            submitted[f"metadata.{key}"] = str(form[f"md_{key}"])
    for name, value in form.multi_items():
        if name.startswith("page_") and name[5:].isdigit():
            submitted[f"page.{int(name[5:])}"] = str(value)
    if form.get("reviewed") == "on":
        submitted["status"] = "done"
    version = str(form.get("version", ""))
    state = state_of(request)
    try:
        changed = await run_in_threadpool(apply_changes, state, session.user, doc_id, submitted,
                                          version=int(version) if version.isdigit() else None)
    except EditError as exc:
        return await _render_error(request, session, doc_id, str(exc), submitted)
    if changed:
        audit(request, session.user.username, "document.edit", doc_id, {
            "fields": changed,
            "after": {f: submitted[f] for f in changed if f.startswith("metadata.") or f == "status"}})
    if form.get("then") == "next":  # accepted with the keyboard: on to the next document of the queue
        return RedirectResponse(f"/review/{doc_id}/next", status_code=303)
    return RedirectResponse(f"/review/{doc_id}?saved={len(changed)}", status_code=303)


async def _render_error(request: Request, session: Session, doc_id: str, error: str,
                        submitted: dict[str, object]) -> Response:
    return await run_in_threadpool(_form_page, request, session, doc_id, error=error, submitted=submitted,
                                   status=400)
