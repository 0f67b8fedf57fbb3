"""The admin page: accounts (role, clearance, active), password resets and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from flows.web.accounts import ROLES, AccountError
from flows.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from flows.web.render import render

router = APIRouter(prefix="/admin", include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
FormStr = Annotated[str, Form()]


def _page(request: Request, session: Session, *, message: str = "", error: str = "", new_token: str = "",
          token_user: str = "", status: int = 200) -> Response:
    accounts = state_of(request).accounts
    users = accounts.list_users()
    return render(request, "admin.html", {
        "users": users, "tokens": {u.username: accounts.tokens(u.username) for u in users}, "roles": ROLES,
        "message": message, "error": error, "new_token": new_token, "token_user": token_user,
    }, session=session, status=status)


def _admin(session: Session, csrf_token: str | None = None) -> None:
    require_role(session.user, "admin")
    if csrf_token is not None:
        check_csrf(session.csrf, csrf_token)


@router.get("")
def admin_page(request: Request, session: SessionDep, done: str = "") -> Response:
    _admin(session)
    messages = {"created": "Đã tạo tài khoản", "updated": "Đã cập nhật tài khoản", "password": "Đã đặt lại mật khẩu",
                "revoked": "Đã thu hồi khóa API"}
    return _page(request, session, message=messages.get(done, ""))


def _clearance(text: str) -> int:
    return int(text) if text.isdigit() else -1


@router.post("/users")
def create_user(request: Request, session: SessionDep, csrf_token: FormStr = "", username: FormStr = "",
                password: FormStr = "", role: FormStr = "staff", clearance: FormStr = "0") -> Response:
    _admin(session, csrf_token)
    try:
        state_of(request).accounts.create_user(username, password, role, clearance=_clearance(clearance))
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "user.create", username, {"role": role, "clearance": _clearance(clearance)})
    return RedirectResponse("/admin?done=created", status_code=303)


@router.post("/users/{username}")
def update_user(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                role: FormStr = "staff", clearance: FormStr = "0", active: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        state_of(request).accounts.update_user(username, role=role, clearance=_clearance(clearance),
                                               active=active == "on")
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "user.update", username,
          {"role": role, "clearance": _clearance(clearance), "active": active == "on"})
    return RedirectResponse("/admin?done=updated", status_code=303)


@router.post("/users/{username}/password")
def reset_password(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                   password: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        state_of(request).accounts.set_password(username, password)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "user.password", username)
    return RedirectResponse("/admin?done=password", status_code=303)


@router.post("/users/{username}/tokens")
def create_token(request: Request, username: str, session: SessionDep, csrf_token: FormStr = "",
                 label: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        token = state_of(request).accounts.create_token(username, label)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "token.create", username, {"label": label})
    return _page(request, session, new_token=token, token_user=username,
                 message="Đã tạo khóa API. Hãy sao chép ngay: khóa chỉ hiển thị một lần.")


@router.post("/users/{username}/tokens/{key}/revoke")
def revoke_token(request: Request, username: str, key: str, session: SessionDep, csrf_token: FormStr = "") -> Response:
    _admin(session, csrf_token)
    try:
        state_of(request).accounts.revoke_token(username, key)
    except AccountError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "token.revoke", username, {"token": key})
    return RedirectResponse("/admin?done=revoked", status_code=303)


AUDIT_PAGE_SIZE = 200


@router.get("/audit")
def audit_page(request: Request, session: SessionDep, actor: str = "", action: str = "", date_from: str = "",
               date_to: str = "") -> Response:
    """The audit trail, newest first, filtered by user, action and dates; with the chain's verification."""
    _admin(session)
    log = state_of(request).audit
    audit(request, session.user.username, "audit.view", "", {"actor": actor, "action": action,
                                                             "from": date_from, "to": date_to})
    entries = list(log.entries(actor=actor[:100] or None, action=action[:100] or None,
                               since=date_from[:32] or None, until=date_to[:32] or None,
                               limit=AUDIT_PAGE_SIZE, newest_first=True))
    check = log.verify()
    return render(request, "audit.html", {
        "entries": entries, "check": check, "actor": actor, "action": action, "date_from": date_from,
        "date_to": date_to, "limit": AUDIT_PAGE_SIZE,
    }, session=session)
