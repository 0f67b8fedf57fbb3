"""The admin page: accounts (role, clearance, active), password resets, API tokens, the requests waiting for a
second admin (``flows.approvals``), and the audit trail as far as the admin's clearance reaches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from flows import approvals
from flows.access import Levels, Rule, access_rule
from flows.accounts import ROLES, AccountError
from flows.approvals import ApprovalError, ApprovalRequest
from flows.audit import filing_filter, verify_audit, visible_audit
from flows.queries import catalog_levels, open_catalog
from interfaces.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from interfaces.web.render import render
from interfaces.web.review import apply_changes
from schemas.errors import NotFoundError

router = APIRouter(prefix="/admin", include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
FormStr = Annotated[str, Form()]


def _page(request: Request, session: Session, *, message: str = "", error: str = "", new_token: str = "",
          token_user: str = "", status: int = 200) -> Response:
    state = state_of(request)
    accounts = state.accounts
    users = accounts.list_users()
    with _levels(request) as levels:
        held = approvals.visible_pending(state.db, session.user, levels)
    return render(request, "admin.html", {
        "users": users, "tokens": {u.username: accounts.tokens(u.username) for u in users}, "roles": ROLES,
        "message": message, "error": error, "new_token": new_token, "token_user": token_user, "held": held,
    }, session=session, status=status)


@contextmanager
def _levels(request: Request) -> Iterator[Levels]:
    """``flows.access.Levels`` from the archive's catalog (no catalog yet: every id is unknown, i.e. hidden)."""
    try:
        catalog = open_catalog(state_of(request).settings)
    except NotFoundError:
        yield lambda doc_id: None
        return
    try:
        yield catalog_levels(catalog)
    finally:
        catalog.close()


def _held(request: Request, session: Session, held: ApprovalRequest) -> None:
    """Audit a request that now waits for a second admin."""
    audit(request, session.user.username, "approval.request", held.target,
          {"kind": held.kind, "request": held.id, **held.public_payload()})


def _held_message(held: ApprovalRequest) -> str:
    return f"Đã gửi yêu cầu số {held.id} ({held.summary}): chờ một quản trị viên khác phê duyệt."


def _admin(session: Session, csrf_token: str | None = None) -> None:
    require_role(session.user, "admin")
    if csrf_token is not None:
        check_csrf(session.csrf, csrf_token)


@router.get("")
@access_rule(Rule.NO_DOCUMENT_DATA)
def admin_page(request: Request, session: SessionDep, done: str = "") -> Response:
    _admin(session)
    audit(request, session.user.username, "admin.view")
    messages = {"created": "Đã tạo tài khoản", "updated": "Đã cập nhật tài khoản", "password": "Đã đặt lại mật khẩu",
                "revoked": "Đã thu hồi khóa API", "held": "Đã gửi yêu cầu: chờ một quản trị viên khác phê duyệt",
                "approved": "Đã phê duyệt và thực hiện yêu cầu", "rejected": "Đã từ chối yêu cầu",
                "withdrawn": "Đã rút lại yêu cầu"}
    return _page(request, session, message=messages.get(done, ""))


def _clearance(text: str) -> int:
    return int(text) if text.isdigit() else -1


@router.post("/users")
@access_rule(Rule.NO_DOCUMENT_DATA)
def create_user(request: Request, session: SessionDep, csrf_token: FormStr = "", username: FormStr = "",
                password: FormStr = "", role: FormStr = "staff", clearance: FormStr = "0") -> Response:
    _admin(session, csrf_token)
    try:
        held = approvals.create_account(state_of(request).accounts, session.user, username, password, role,
                                        _clearance(clearance))
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    if held is not None:
        _held(request, session, held)
        return RedirectResponse("/admin?done=held", status_code=303)
    audit(request, session.user.username, "user.create", username, {"role": role, "clearance": _clearance(clearance)})
    return RedirectResponse("/admin?done=created", status_code=303)


@router.post("/users/{username}")
@access_rule(Rule.NO_DOCUMENT_DATA)
def update_user(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                role: FormStr = "staff", clearance: FormStr = "0", active: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        held = approvals.change_account(state_of(request).accounts, session.user, username, role=role,
                                        clearance=_clearance(clearance), active=active == "on")
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    if held is not None:
        _held(request, session, held)
        return RedirectResponse("/admin?done=held", status_code=303)
    audit(request, session.user.username, "user.update", username,
          {"role": role, "clearance": _clearance(clearance), "active": active == "on"})
    return RedirectResponse("/admin?done=updated", status_code=303)


@router.post("/users/{username}/password")
@access_rule(Rule.NO_DOCUMENT_DATA)
def reset_password(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                   password: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        held = approvals.reset_password(state_of(request).accounts, session.user, username, password)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    if held is not None:
        _held(request, session, held)
        return RedirectResponse("/admin?done=held", status_code=303)
    audit(request, session.user.username, "user.password", username)
    return RedirectResponse("/admin?done=password", status_code=303)


@router.post("/users/{username}/tokens")
@access_rule(Rule.NO_DOCUMENT_DATA)
def create_token(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                 label: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        token, held = approvals.mint_token(state_of(request).accounts, session.user, username, label)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    if held is not None:
        _held(request, session, held)
        return _page(request, session, new_token=token, token_user=held.target,
                     message=f"{_held_message(held)} Khóa chỉ dùng được sau khi được phê duyệt. Hãy sao chép ngay: "
                             "khóa chỉ hiển thị một lần.")
    audit(request, session.user.username, "token.create", username, {"label": label})
    return _page(request, session, new_token=token, token_user=username,
                 message="Đã tạo khóa API. Hãy sao chép ngay: khóa chỉ hiển thị một lần.")


@router.post("/users/{username}/tokens/{key}/revoke")
@access_rule(Rule.NO_DOCUMENT_DATA)
def revoke_token(request: Request, username: str, key: str, session: SessionDep, csrf_token: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        state_of(request).accounts.revoke_token(username, key)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "token.revoke", username, {"token": key})
    return RedirectResponse("/admin?done=revoked", status_code=303)


@router.post("/approvals/{request_id}/approve")
@access_rule(Rule.DOCUMENT)
def approve_request(request: Request, request_id: int, session: SessionDep, csrf_token: FormStr = "") -> Response:
    """A second admin approves a pending request; it is applied at once (a declassification through the
    corrections path, loaded with the approver's clearance: a document above it is as a missing request)."""
    _admin(session, csrf_token)
    state = state_of(request)
    approver = session.user

    def declassify(held: ApprovalRequest) -> object:
        return apply_changes(state, approver, held.target, {approvals.CLASSIFICATION: held.payload.get("after") or ""})

    try:
        done = approvals.approve(state.accounts, approver, request_id, apply_declassification=declassify)
    except ApprovalError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, approver.username, "approval.approve", done.target,
          {"kind": done.kind, "request": done.id, "requested_by": done.requested_by, **done.public_payload()})
    return RedirectResponse("/admin?done=approved", status_code=303)


@router.post("/approvals/{request_id}/reject")
@access_rule(Rule.DOCUMENT)
def reject_request(request: Request, request_id: int, session: SessionDep, csrf_token: FormStr = "",
                   note: FormStr = "") -> Response:
    """Reject a pending request (an admin cleared for it), or withdraw one's own."""
    _admin(session, csrf_token)
    state = state_of(request)
    try:
        with _levels(request) as levels:
            done = approvals.reject(state.accounts, session.user, request_id, levels, note)
    except ApprovalError as exc:
        return _page(request, session, error=str(exc), status=400)
    withdrawn = done.requested_by == session.user.username
    audit(request, session.user.username, "approval.withdraw" if withdrawn else "approval.reject", done.target,
          {"kind": done.kind, "request": done.id, "requested_by": done.requested_by, "note": done.note,
           **done.public_payload()})
    return RedirectResponse(f"/admin?done={'withdrawn' if withdrawn else 'rejected'}", status_code=303)


AUDIT_PAGE_SIZE = 200


@router.get("/audit")
@access_rule(Rule.AUDIT)
def audit_page(request: Request, session: SessionDep, actor: str = "", action: str = "", date_from: str = "",
               date_to: str = "") -> Response:
    """The audit trail, newest first, filtered by user, action and dates; with the chain's verification."""
    _admin(session)
    log = state_of(request).audit
    audit(request, session.user.username, "audit.view", "", {"actor": actor, "action": action,
                                                             "from": date_from, "to": date_to})
    clearances = {u.username: u.clearance for u in state_of(request).accounts.list_users()}
    with _levels(request) as levels:
        found = log.entries(actor=actor[:100] or None, action=action[:100] or None, since=date_from[:32] or None,
                            until=date_to[:32] or None, newest_first=True)
        filing = filing_filter(state_of(request).settings, session.user.principal)  # hidden-only hồ sơ: no entry
        entries = visible_audit(session.user.principal, found, levels, clearances, AUDIT_PAGE_SIZE, filing)
    check = verify_audit(state_of(request).settings)
    return render(request, "audit.html", {
        "entries": entries, "check": check, "actor": actor, "action": action, "date_from": date_from,
        "date_to": date_to, "limit": AUDIT_PAGE_SIZE,
    }, session=session)
