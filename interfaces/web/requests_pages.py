"""Access requests (phiếu yêu cầu khai thác): the form, the confirmation, the requester's own list, the approvers'
list with grant and refusal (``flows.access_requests`` holds the rules)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from flows import access_requests as ar
from flows.access import Rule, access_rule
from interfaces.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from interfaces.web.render import render
from interfaces.web.service import active_grant_ids
from storage.accounts_db import WebDb

ENDED = "Không còn hiệu lực"  # a grant that ended before its date: the reason is not told
router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]


def _form(request: Request, session: Session, *, error: str = "", values: dict[str, str] | None = None,
          status: int = 200) -> Response:
    return render(request, "requests_new.html", {"error": error, "values": values or {}}, session=session,
                  status=status)


@router.get("/requests/new")
@access_rule(Rule.NO_DOCUMENT_DATA)
def request_form(request: Request, session: SessionDep) -> Response:
    return _form(request, session)


@router.post("/requests")
@access_rule(Rule.NO_DOCUMENT_DATA)  # nothing about the archive is read: the answer is the same whatever was typed
def send_request(request: Request, session: SessionDep, csrf_token: Annotated[str, Form()] = "",
                 reference: Annotated[str, Form()] = "", doc_ref: Annotated[str, Form()] = "",
                 purpose: Annotated[str, Form()] = "") -> Response:
    check_csrf(session.csrf, csrf_token)
    state = state_of(request)
    try:
        request_id = ar.submit(state.db, session.user, reference, doc_ref, purpose, state.clock())
    except ar.AccessRequestError as exc:  # only about the requester's own input (echoed back: their own text)
        values = {"reference": reference[:ar.MAX_REFERENCE], "doc_ref": doc_ref[:64], "purpose": purpose[:2000]}
        return _form(request, session, error=str(exc), values=values, status=400)
    audit(request, session.user.username, "access_request.create", f"request:{request_id}",
          {"request": request_id, "query": " | ".join(x for x in (reference.strip(), doc_ref.strip()) if x)})
    return RedirectResponse("/requests/sent", status_code=303)


@router.get("/requests/sent")
@access_rule(Rule.NO_DOCUMENT_DATA)
def request_sent(request: Request, session: SessionDep) -> Response:
    """The same page whatever was asked (no id, no echo: nothing to compare between two requests)."""
    return render(request, "requests_sent.html", {}, session=session)


@router.get("/requests")
@access_rule(Rule.LISTING)  # the user's own requests: their own text; a granted document's id only once granted
def own_requests(request: Request, session: SessionDep) -> Response:
    state = state_of(request)
    now = state.clock()
    active = active_grant_ids(state, session.user.username)
    rows = []
    for r in ar.own_requests(state.db, session.user.username):
        status, label = r.status(now), r.status_label(now)
        if status == "granted" and r.doc_id not in active:  # ended before its date (why is not said)
            status, label = "ended", ENDED
        rows.append({"r": r, "status": status, "label": label})
    audit(request, session.user.username, "access_request.list", "", {"shown": len(rows)})
    return render(request, "requests_own.html", {"rows": rows}, session=session)


@router.get("/requests/approve")
@access_rule(Rule.LISTING)  # requests the approver may decide; documents resolved with the approver's clearance
def approve_list(request: Request, session: SessionDep, error: str = "", decided: int = 0) -> Response:
    require_role(session.user, "archivist")
    state = state_of(request)
    principal = session.user.principal
    items = [{"r": r, "candidates": ar.candidates(state.settings, r, principal)}
             for r in ar.pending_for(state.db, session.user)]
    audit(request, session.user.username, "access_request.pending", "", {"shown": len(items)})
    return render(request, "requests_approve.html", {
        "items": items, "error": error if error in ar.MESSAGES else "",  # only the app's own messages, never a link's
        "done": _decided_message(state.db, session.user.username, decided), "default_days": ar.DEFAULT_DAYS,
        "max_days": ar.MAX_DAYS}, session=session)


def _decided_message(db: WebDb, approver: str, request_id: int) -> str:
    """What the approver just decided (only a request they decided themselves)."""
    decided = ar.get(db, request_id) if request_id > 0 else None
    if decided is None or decided.decided_by != approver:
        return ""
    if decided.state == "granted":
        return f"Đã cho phép {decided.requester} khai thác văn bản {decided.doc_id} đến {decided.expires_at}"
    return f"Đã từ chối yêu cầu của {decided.requester}"


def _back(error: str = "", decided: int = 0) -> Response:
    query = f"?error={quote(error)}" if error else (f"?decided={decided}" if decided else "")
    return RedirectResponse("/requests/approve" + query, status_code=303)


@router.post("/requests/{request_id}/grant")
@access_rule(Rule.LISTING)  # grants only a document the approver may see, resolved with their clearance
def grant_request(request: Request, request_id: int, session: SessionDep, csrf_token: Annotated[str, Form()] = "",
                  doc_id: Annotated[str, Form()] = "", days: Annotated[int, Form()] = ar.DEFAULT_DAYS) -> Response:
    check_csrf(session.csrf, csrf_token)
    require_role(session.user, "archivist")
    state = state_of(request)
    try:
        decided = ar.grant(state.db, state.settings, session.user, request_id, doc_id[:64], days, state.clock())
    except ar.AccessRequestError as exc:
        return _back(error=str(exc))
    audit(request, session.user.username, "access_request.grant", decided.doc_id or "",
          {"request": request_id, "requester": decided.requester, "expires_at": decided.expires_at, "days": days})
    return _back(decided=decided.id)


@router.post("/requests/{request_id}/refuse")
@access_rule(Rule.LISTING)
def refuse_request(request: Request, request_id: int, session: SessionDep, csrf_token: Annotated[str, Form()] = "",
                   reason: Annotated[str, Form()] = "") -> Response:
    check_csrf(session.csrf, csrf_token)
    require_role(session.user, "archivist")
    state = state_of(request)
    try:
        decided = ar.refuse(state.db, session.user, request_id, reason, state.clock())
    except ar.AccessRequestError as exc:
        return _back(error=str(exc))
    audit(request, session.user.username, "access_request.refuse", f"request:{request_id}",
          {"request": request_id, "requester": decided.requester})
    return _back(decided=decided.id)
