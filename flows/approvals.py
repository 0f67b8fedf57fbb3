"""Four eyes: whatever lowers secrecy or widens an admin's reach waits for a second admin.

Requests (table ``approval_requests`` of ``web.sqlite3``), by kind:

``declassify``  lowering or removing a document's classification (giải mật) by any correction: ``hold_lowering`` is
                the hook of ``apply_changes``, so the other corrected fields apply at once while the classification
                stays as it is until an admin approves; the correction is then applied through the same path.
                Raising a classification is never held (fail closed).
``account``     raising one's own role or clearance, making another account an admin, granting another account a
                classified clearance (raising it, or unlocking a cleared account), demoting, locking or lowering
                the clearance of any other admin (``flows.accounts.gate_update``).
``create``      creating an admin account, or an account with a classified clearance (``gate_new_user``).
``token``       an API token for another account (``gate_token``): shown to the requester at once, kept only as its
                hash in the request, valid only once approved.
``password``    resetting another admin's password (``gate_password``): only the new hash is kept until approved.

Refused outright (``AccountError``): granting a clearance above one's own, a token or a password for an account
cleared above one's own; asking to raise the role or clearance of, unlock, or mint a token for an account whose
credentials one holds (``HELD_BY_YOU``). The approver is an active admin other than the requester whose clearance
covers the request's level: the document's current level, the clearance granted, the clearance of the account whose
credential is made; and neither holds a credential of the other (``flows.accounts.credential_holders``: who created the
account, ever set its password or was shown one of its API tokens, an append-only history; for the requester, also
as recorded when the request was made), so one admin cannot approve through a second account whose password they
chose, even after that account changed its own password. Nor may an approver (or, by then, the requester) hold a
credential of the account whose access a request widens (a raise, an unlock, a token).
The requester may withdraw their own request. Every step is audited (the request, the approval or
rejection). The local operator's ``sohoa user add`` / ``sohoa user passwd`` are the bootstrap and are not held.

The request records and their table: ``flows.approval_requests`` (public names re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flows.access import ROLES, Levels, level_of
from flows.accounts import (
    AccountError,
    Accounts,
    NeedsSecondAdmin,
    User,
    credential_holders,
    hash_password,
    new_api_token,
)
from flows.approval_requests import (
    CLASSIFICATION,
    CONTROLLED,
    HELD_BY_YOU,
    HOLDERS,
    KINDS,
    NOT_FOUND,
    REQUEST_COLUMNS,
    STALE,
    TARGET_CONTROLLED,
    TARGET_HELD,
    ApprovalError,
    ApprovalRequest,
    StaleRequest,
    as_int,
    close_request,
    get,
    insert_request,
    pending,
    pending_for_document,
    request_by_id,
    request_level,
    request_of_row,
    visible_pending,
)
from schemas.errors import NotFoundError
from storage.accounts_db import WebDb
from storage.audit import AuditLog
from storage.db_conn import Connection

Change = tuple[str, object, object]  # field, before, after (``apply_changes``)


# --- documents: the hook of the corrections ---------------------------------------------------------------------

_APPROVING: ContextVar[int | None] = ContextVar("sohoa_approving", default=None)


def needs_second_admin(before: object, after: object) -> bool:
    """Whether changing a classification from ``before`` to ``after`` lowers it (giải mật, or lowering the level):
    then it waits for a second admin. Raising it, or keeping it, never does."""
    return level_of(after) < level_of(before)


def hold_lowering(db: WebDb, user: User, doc_id: str, changes: list[Change], *, audit: AuditLog | None = None,
                  source: str = "web") -> list[Change]:
    """The hook of ``apply_changes`` (called inside ``flows.corrections.writing``, before anything is recorded):
    the changes of a correction that may be applied now.

    A lowered classification is left out and becomes a pending ``declassify`` request instead (``audit`` records
    it); the other fields go on. While ``approve`` applies exactly that request, the approver is checked against
    the document's current level and the request is claimed (pending → approved) before the change passes."""
    approving = _APPROVING.get()
    kept: list[Change] = []
    for change in changes:
        field, before, after = change
        if field != CLASSIFICATION or not needs_second_admin(before, after):
            kept.append(change)
        elif approving is not None:
            _take_approval(db, approving, user, doc_id, before, after)
            kept.append(change)
        else:
            request_id = _request_lowering(db, user, doc_id, before, after)
            if request_id is not None and audit is not None:
                audit.append(actor=user.username, source=source, action="approval.request", target=doc_id,
                             details={"kind": "declassify", "request": request_id, "field": field,
                                      "before": before, "after": after})
    return kept


def _request_lowering(db: WebDb, user: User, doc_id: str, before: object, after: object) -> int | None:
    """A new declassification request (an identical pending one is kept instead: None; a different one is
    replaced)."""
    with db.transaction() as conn:
        rows = conn.execute(f"SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE kind = 'declassify' AND target = ? "
                            "AND state = 'pending'", (doc_id,)).fetchall()
        for old in map(request_of_row, rows):
            if old.payload.get("before") == before and old.payload.get("after") == after:
                return None
            close_request(conn, old, "cancelled", user.username, "thay bằng yêu cầu mới")
        return insert_request(conn, "declassify", doc_id, {"field": CLASSIFICATION, "before": before, "after": after},
                              level_of(before), user.username)


def _take_approval(db: WebDb, request_id: int, user: User, doc_id: str, before: object, after: object) -> None:
    with db.transaction() as conn:
        request = request_by_id(conn, request_id)
        if request is None or request.kind != "declassify" or request.state != "pending" or request.target != doc_id:
            raise ApprovalError(NOT_FOUND)
        if request.payload.get("before") != before or request.payload.get("after") != after:
            raise StaleRequest(STALE)
        _check_approver(request, user, level_of(before))
        _check_control(conn, request, user)
        if not close_request(conn, request, "approved", user.username):
            raise ApprovalError(NOT_FOUND)


@contextmanager
def _approving(request_id: int) -> Iterator[None]:
    token = _APPROVING.set(request_id)
    try:
        yield
    finally:
        _APPROVING.reset(token)


def _check_approver(request: ApprovalRequest, approver: User, level: int) -> None:
    if not approver.active or not approver.has_role("admin"):
        raise ApprovalError("Chỉ quản trị viên mới duyệt được yêu cầu")
    if approver.username == request.requested_by:
        raise ApprovalError("Không thể tự duyệt yêu cầu của chính mình: cần một quản trị viên khác")
    if approver.clearance < level:
        if request.kind == "declassify":
            raise ApprovalError(NOT_FOUND)  # a document above the approver's clearance is as one that does not exist
        raise ApprovalError("Mức mật của bạn thấp hơn mức yêu cầu này cấp: cần quản trị viên có mức mật đủ cao")


def _check_control(conn: Connection, request: ApprovalRequest, approver: User) -> None:
    """Refuse an approver who holds (or held when the request was made) a credential of the requester, or one of
    whose credentials the requester holds: they may be one person at two keyboards."""
    recorded = request.payload.get(HOLDERS)
    holders = set(credential_holders(conn, request.requested_by))
    if isinstance(recorded, list):
        holders.update(str(n) for n in recorded if n)
    if approver.username in holders or request.requested_by in credential_holders(conn, approver.username):
        raise ApprovalError(CONTROLLED)


def _widening(payload: dict[str, object]) -> bool:
    """Whether an ``account`` request raises the account's role or clearance, or unlocks it."""
    before = payload.get("from")
    if not isinstance(before, dict):
        return True  # fail closed
    rank: dict[str, int] = {role: n for n, role in enumerate(ROLES)}
    return (rank.get(str(payload.get("role")), len(ROLES)) > rank.get(str(before.get("role")), len(ROLES))
            or as_int(payload.get("clearance")) > as_int(before.get("clearance"))
            or (bool(payload.get("active")) and not before.get("active")))


def _widens_target(request: ApprovalRequest) -> bool:
    """Requests that widen what another account may reach: raising its role or clearance, unlocking it, a token."""
    if request.target == request.requested_by:
        return False  # one's own: the requester is the account, ``_check_control`` covers it
    return request.kind == "token" or (request.kind == "account" and _widening(request.payload))


def _check_target_control(conn: Connection, request: ApprovalRequest, approver: User) -> None:
    """Refuse to widen an account whose credentials the approver holds (they would approve their own key), or the
    requester holds (they came to hold one since the request: ``StaleRequest``)."""
    if not _widens_target(request):
        return
    holders = credential_holders(conn, request.target)
    if approver.username in holders:
        raise ApprovalError(TARGET_CONTROLLED)
    if request.requested_by in holders:
        raise StaleRequest(TARGET_HELD)


def _refuse_holder(accounts: Accounts, actor: User, target: str) -> None:
    """A holder of an account's credentials may not ask to widen its access (``HELD_BY_YOU``)."""
    if target != actor.username and actor.username in accounts.credential_holders(target):
        raise AccountError(HELD_BY_YOU)


# --- accounts ---------------------------------------------------------------------------------------------------

def _open_request(accounts: Accounts, actor: User, kind: str, target: str, payload: dict[str, object],
                  level: int, *, replace: bool = True) -> ApprovalRequest:
    with accounts.db.transaction() as conn:
        if replace:  # a newer request of the same admin for the same account replaces the older one
            rows = conn.execute(f"SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE kind = ? AND target = ? "
                                "AND requested_by = ? AND state = 'pending'", (kind, target, actor.username))
            for old in list(map(request_of_row, rows)):
                close_request(conn, old, "cancelled", actor.username, "thay bằng yêu cầu mới")
        request = request_by_id(conn, insert_request(conn, kind, target, payload, level, actor.username))
    assert request is not None
    return request


def change_account(accounts: Accounts, actor: User, username: str, *, role: str, clearance: int,
                   active: bool) -> ApprovalRequest | None:
    """Change an account now (None), or ask a second admin (the request); ``AccountError`` when refused."""
    try:
        accounts.update_user(username, role=role, clearance=clearance, active=active, by=actor)
        return None
    except NeedsSecondAdmin:
        user = accounts.find_user(username)
        assert user is not None
        payload: dict[str, object] = {"role": role, "clearance": clearance, "active": active,
                                      "from": {"role": user.role, "clearance": user.clearance, "active": user.active}}
        if _widening(payload):
            _refuse_holder(accounts, actor, user.username)
        return _open_request(accounts, actor, "account", user.username, payload, max(clearance, user.clearance))


def create_account(accounts: Accounts, actor: User, username: str, password: str, role: str,
                   clearance: int) -> ApprovalRequest | None:
    """Create an account now (None), or ask a second admin (an admin account); ``AccountError`` when refused."""
    try:
        accounts.create_user(username, password, role, clearance=clearance, by=actor)
        return None
    except NeedsSecondAdmin:
        name = accounts.check_new_user(username, role, clearance)
        payload: dict[str, object] = {"role": role, "clearance": clearance,
                                      "password_hash": hash_password(password)}
        return _open_request(accounts, actor, "create", name, payload, clearance)


def mint_token(accounts: Accounts, actor: User, username: str, label: str) -> tuple[str, ApprovalRequest | None]:
    """An API token (shown once), valid now for one's own account, else once a second admin approves."""
    try:
        return accounts.create_token(username, label, by=actor), None
    except NeedsSecondAdmin:
        user = accounts.find_user(username)
        assert user is not None
        _refuse_holder(accounts, actor, user.username)
        token, token_hash = new_api_token()
        payload: dict[str, object] = {"label": label.strip()[:80], "token_hash": token_hash}
        return token, _open_request(accounts, actor, "token", user.username, payload, user.clearance, replace=False)


def reset_password(accounts: Accounts, actor: User, username: str, password: str) -> ApprovalRequest | None:
    """Reset a password now (None), or ask a second admin (another admin's password)."""
    try:
        accounts.set_password(username, password, by=actor)
        return None
    except NeedsSecondAdmin:
        user = accounts.find_user(username)
        assert user is not None
        payload: dict[str, object] = {"password_hash": hash_password(password)}
        return _open_request(accounts, actor, "password", user.username, payload, user.clearance)


def _account_level(accounts: Accounts, request: ApprovalRequest) -> int:
    """The clearance an approver needs now (the account's current clearance may have changed)."""
    user = accounts.find_user(request.target)
    current = user.clearance if user is not None else 0
    if request.kind in ("account", "create"):
        return max(as_int(request.payload.get("clearance")), current)
    return current


def _apply_account(accounts: Accounts, request: ApprovalRequest) -> None:
    p = request.payload
    user = accounts.find_user(request.target)
    if request.kind == "create":  # the requester chose the password: recorded as the creator
        accounts.create_user_hashed(request.target, str(p["password_hash"]), str(p["role"]),
                                    clearance=as_int(p["clearance"]), created_by=request.requested_by)
        return
    if user is None:
        raise StaleRequest(STALE)
    if request.kind == "account":
        if p.get("from") != {"role": user.role, "clearance": user.clearance, "active": user.active}:
            raise StaleRequest(STALE)
        accounts.update_user(user.username, role=str(p["role"]), clearance=as_int(p["clearance"]),
                             active=bool(p["active"]))
        return
    requester = accounts.find_user(request.requested_by)
    if requester is None or not requester.active or requester.clearance < user.clearance:
        raise StaleRequest(STALE)  # the credential goes to the requester: they must still be cleared for the account
    if request.kind == "token":
        accounts.install_token(user.username, str(p.get("label") or ""), str(p["token_hash"]),
                               created_by=request.requested_by)  # shown to the requester only
    else:
        accounts.set_password_hash(user.username, str(p["password_hash"]), set_by=request.requested_by)


# --- deciding ---------------------------------------------------------------------------------------------------

def approve(accounts: Accounts, approver: User, request_id: int, *,
            apply_declassification: Callable[[ApprovalRequest], object]) -> ApprovalRequest:
    """Approve a pending request and apply it. ``apply_declassification`` applies a declassification through the
    corrections path (``apply_changes`` run by the approver), whose hook checks the approver against the
    document's current level in the same transaction as the edit. ``ApprovalError`` when it cannot be approved
    (``StaleRequest``: cancelled, what it would change has changed)."""
    request = get(accounts.db, request_id)
    if request is None or request.state != "pending":
        raise ApprovalError(NOT_FOUND)
    if request.kind == "declassify":
        _check_approver(request, approver, request.level)
        with accounts.db.connect() as conn:  # checked again by the hook, in the transaction that claims it
            _check_control(conn, request, approver)
        try:
            try:
                with _approving(request.id):
                    apply_declassification(request)
            except NotFoundError as exc:  # the approver may not see the document (any more)
                raise ApprovalError(NOT_FOUND) from exc
            except BaseException:  # claimed by the hook but not applied: it waits again
                with accounts.db.connect() as conn:
                    conn.execute("UPDATE approval_requests SET state = 'pending', decided_by = NULL, "
                                 "decided_at = NULL WHERE id = ? AND state = 'approved'", (request.id,))
                raise
            done = get(accounts.db, request.id)
            if done is None or done.state != "approved":  # the document no longer has that classification
                raise StaleRequest(STALE)
        except StaleRequest:
            with accounts.db.transaction() as conn:
                close_request(conn, request, "cancelled", approver.username, STALE)
            raise
        return done
    _check_approver(request, approver, _account_level(accounts, request))
    try:
        with accounts.db.connect() as conn:
            _check_target_control(conn, request, approver)
    except StaleRequest:
        with accounts.db.transaction() as conn:
            close_request(conn, request, "cancelled", approver.username, TARGET_HELD)
        raise
    with accounts.db.transaction() as conn:  # claimed first: two approvers never both apply it
        _check_control(conn, request, approver)
        _check_target_control(conn, request, approver)
        if not close_request(conn, request, "approved", approver.username):
            raise ApprovalError(NOT_FOUND)
    try:
        _apply_account(accounts, request)  # from the request as read (the stored one no longer holds its secrets)
    except (AccountError, StaleRequest) as exc:
        with accounts.db.connect() as conn:
            conn.execute("UPDATE approval_requests SET state = 'cancelled', note = ? WHERE id = ?",
                         (str(exc)[:500], request.id))
        raise exc if isinstance(exc, StaleRequest) else ApprovalError(str(exc)) from exc
    done = get(accounts.db, request.id)
    assert done is not None
    return done


def reject(accounts: Accounts, admin: User, request_id: int, levels: Levels, note: str = "") -> ApprovalRequest:
    """Reject a pending request (an admin whose clearance covers it), or withdraw one's own."""
    request = get(accounts.db, request_id)
    if request is None or request.state != "pending":
        raise ApprovalError(NOT_FOUND)
    own = admin.username == request.requested_by
    if not own:
        level = request_level(request, levels) if request.kind == "declassify" else _account_level(accounts, request)
        if not admin.has_role("admin") or admin.clearance < level:
            raise ApprovalError(NOT_FOUND if request.kind == "declassify" else
                                "Mức mật của bạn thấp hơn mức yêu cầu này cấp")
    with accounts.db.transaction() as conn:
        if not close_request(conn, request, "cancelled" if own else "rejected", admin.username, note.strip()[:500]):
            raise ApprovalError(NOT_FOUND)
    done = get(accounts.db, request.id)
    assert done is not None
    return done


__all__ = ["CLASSIFICATION", "KINDS", "ApprovalError", "ApprovalRequest", "StaleRequest", "approve",
           "change_account", "create_account", "get", "hold_lowering", "mint_token", "needs_second_admin", "pending",
           "pending_for_document", "reject", "request_level", "reset_password", "visible_pending"]
