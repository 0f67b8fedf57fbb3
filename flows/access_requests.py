"""Access requests (phiếu yêu cầu khai thác): a user asks for a document above their clearance, an approver grants
read-only access to it for a limited time or refuses (table ``access_requests`` of ``web.sqlite3``).

The rules (kept to ``flows.access``):

* **Asking tells nothing.** A request stores only what the requester typed (a số/ký hiệu reference, optionally a
  document id they were given, a mandatory purpose). Nothing is looked up when it is made: the answer is the same
  whatever they typed, and it takes the same path (one insert).
* **Who approves.** An archivist or admin other than the requester whose clearance is above the requester's (only
  they could grant anything the requester cannot already read). They see every such pending request as the
  requester's text and purpose; the document(s) it may name are resolved with the APPROVER's own principal
  (``candidates``): a match above the approver's clearance is never shown, and a request whose only match is above
  their clearance reads exactly like one that matches nothing. The requester's text can only carry what the
  requester may read, so it is never shown to an approver cleared below the requester.
* **Grant.** One resolved document (the approver must be able to see it), 1–30 days (default 7). While active,
  ``active_grants`` puts the document's id in the requester's ``Principal.grants``: the document page, its page
  images and its PDF/A then open (``Principal.may_read``). Searches, facets, counts, listings, originals, the
  review form and the REST API are NOT widened. After ``expires_at`` the document is again as if missing.
* **Refusal** needs a reason. Nobody approves their own request, nor one of an account whose credentials they hold
  or that holds theirs (``flows.accounts.credential_holders``).

Times are ISO-8601 UTC strings; every function that depends on the time takes ``now`` (an injectable clock).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from flows.access import Levels, Principal, level_of_metadata, visible_items
from flows.accounts import User, credential_holders
from schemas.settings import Settings
from storage.accounts_db import WebDb
from storage.db_conn import Connection

DEFAULT_DAYS = 7
MAX_DAYS = 30
MAX_REFERENCE = 300
MAX_PURPOSE = 1000
MAX_CANDIDATES = 10
MAX_PENDING = 20  # a requester's requests waiting for a decision (each costs every approver a catalog scan)
DOC_REF_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STATE_LABELS = {"pending": "Đang chờ phê duyệt", "granted": "Đã cho phép", "refused": "Bị từ chối"}

NOT_FOUND = "Không tìm thấy yêu cầu đang chờ phê duyệt"
SELF = "Không thể tự phê duyệt yêu cầu khai thác của chính mình"
CONTROLLED = ("Không thể phê duyệt: bạn nắm (hoặc đã nắm) thông tin đăng nhập của người gửi yêu cầu, hoặc người gửi "
              "nắm thông tin đăng nhập của bạn: cần người phê duyệt khác")
NO_DOCUMENT = "Không tìm thấy văn bản này trong các văn bản khớp với yêu cầu mà bạn được xem"
BAD_DAYS = f"Thời hạn khai thác phải từ 1 đến {MAX_DAYS} ngày"
NO_REASON = "Cần ghi lý do từ chối"
NO_PURPOSE = "Cần ghi mục đích khai thác"
NO_REFERENCE = "Cần ghi số, ký hiệu (hoặc mã) của văn bản cần khai thác"
TOO_LONG = f"Nội dung quá dài (số, ký hiệu tối đa {MAX_REFERENCE} ký tự, mục đích tối đa {MAX_PURPOSE} ký tự)"
BAD_DOC_REF = "Mã văn bản chỉ gồm chữ cái không dấu, chữ số, dấu gạch ngang và gạch dưới (tối đa 64 ký tự)"
TOO_MANY = f"Bạn đã có {MAX_PENDING} yêu cầu đang chờ phê duyệt: chờ các yêu cầu đó được quyết định rồi gửi tiếp"


MESSAGES = frozenset((NOT_FOUND, SELF, CONTROLLED, NO_DOCUMENT, BAD_DAYS, NO_REASON, NO_PURPOSE, NO_REFERENCE,
                      TOO_LONG, BAD_DOC_REF, TOO_MANY))


class AccessRequestError(ValueError):
    """A request, grant or refusal that cannot be done (the message is Vietnamese, for the user)."""


@dataclass(frozen=True)
class AccessRequest:
    id: int
    requester: str
    requester_clearance: int
    reference: str  # the requester's own text (số/ký hiệu as they read it)
    doc_ref: str  # a document id they were given ('' when none)
    purpose: str
    requested_at: str
    state: str  # pending | granted | refused
    decided_by: str | None
    decided_at: str | None
    doc_id: str | None  # the granted document
    expires_at: str | None
    note: str  # the reason of a refusal

    def status(self, now: datetime) -> str:
        """The state as the requester reads it (a grant past its expiry is ``expired``)."""
        if self.state == "granted" and self.expires_at is not None and self.expires_at <= iso(now):
            return "expired"
        return self.state

    def status_label(self, now: datetime) -> str:
        return "Đã hết hạn" if self.status(now) == "expired" else STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class Candidate:
    """A document a request may be about, as an approver may see it."""

    doc_id: str
    code: str
    issued_date: str
    subject: str
    classification: str


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


_COLUMNS = ("id, requester, requester_clearance, reference, doc_ref, purpose, requested_at, state, decided_by, "
            "decided_at, doc_id, expires_at, note")


def _request(row: tuple[object, ...]) -> AccessRequest:
    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return AccessRequest(id=int(cast(int, row[0])), requester=str(row[1]), requester_clearance=int(cast(int, row[2])),
                         reference=str(row[3]), doc_ref=str(row[4]), purpose=str(row[5]), requested_at=str(row[6]),
                         state=str(row[7]), decided_by=text(row[8]), decided_at=text(row[9]), doc_id=text(row[10]),
                         expires_at=text(row[11]), note=str(row[12]))


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


# --- asking --------------------------------------------------------------------------------------------------
def submit(db: WebDb, requester: User, reference: str, doc_ref: str, purpose: str, now: datetime) -> int:
    """Record a request (nothing about the archive is read: the answer cannot depend on what exists). Errors only
    for the requester's own input (``AccessRequestError``)."""
    reference, doc_ref, purpose = _clean(reference), doc_ref.strip(), _clean(purpose)
    if not purpose:
        raise AccessRequestError(NO_PURPOSE)
    if not reference and not doc_ref:
        raise AccessRequestError(NO_REFERENCE)
    if len(reference) > MAX_REFERENCE or len(purpose) > MAX_PURPOSE:
        raise AccessRequestError(TOO_LONG)
    if doc_ref and not DOC_REF_RE.match(doc_ref):
        raise AccessRequestError(BAD_DOC_REF)
    with db.transaction() as conn:  # the count and the insert under one write lock
        pending = conn.execute("SELECT count(*) FROM access_requests WHERE requester = ? AND state = 'pending'",
                               (requester.username,)).fetchone()[0]
        if pending >= MAX_PENDING:  # only about the requester's own requests: nothing about the archive
            raise AccessRequestError(TOO_MANY)
        cursor = conn.execute(
            "INSERT INTO access_requests(requester, requester_clearance, reference, doc_ref, purpose, requested_at) "
            "VALUES (?,?,?,?,?,?)", (requester.username, requester.clearance, reference, doc_ref, purpose, iso(now)))
        return int(cast(int, cursor.lastrowid))


def own_requests(db: WebDb, username: str) -> list[AccessRequest]:
    """The requests a user made, newest first (their own text, the decision, the expiry)."""
    with db.connect() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM access_requests WHERE requester = ? ORDER BY id DESC",
                            (username,))
        return [_request(r) for r in rows]


def all_requests(db: WebDb) -> list[AccessRequest]:
    with db.connect() as conn:
        return [_request(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM access_requests ORDER BY id")]


def get(db: WebDb, request_id: int) -> AccessRequest | None:
    with db.connect() as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM access_requests WHERE id = ?", (request_id,)).fetchone()
        return None if row is None else _request(row)


# --- the policy's input --------------------------------------------------------------------------------------
def active_grants(db: WebDb, username: str, now: datetime, levels: Levels) -> frozenset[str]:
    """The documents granted to ``username`` whose grant has not expired at ``now`` (``Principal.grants``), and
    whose CURRENT level (``levels``, from the catalog) is still within the granting approver's current clearance:
    a document reclassified above what its approver may see (or no longer catalogued) is no longer granted (the
    approver could not grant it now; a raised classification must not be read through an older grant)."""
    with db.connect() as conn:
        rows = conn.execute("SELECT r.doc_id, u.clearance FROM access_requests r JOIN users u "
                            "ON u.username = r.decided_by WHERE r.requester = ? AND r.state = 'granted' "
                            "AND r.doc_id IS NOT NULL AND r.expires_at > ?", (username, iso(now))).fetchall()
    granted = set()
    for doc_id, approver_clearance in rows:
        level = levels(str(doc_id))
        if level is not None and level <= int(approver_clearance):
            granted.add(str(doc_id))
    return frozenset(granted)


def with_grants(db: WebDb, user: User, now: datetime, levels: Levels) -> Principal:
    """The user as the access policy sees them when reading ONE document: their clearance and active grants
    (``levels``: the documents' current secrecy levels, ``flows.access.catalog_levels``)."""
    principal = user.principal
    grants = active_grants(db, user.username, now, levels)
    return Principal(principal.name, principal.role, principal.clearance, principal.operator, grants)


# --- approving -----------------------------------------------------------------------------------------------
def may_approve(approver: User, request: AccessRequest) -> bool:
    """The rule of who sees a request to decide it (module docstring)."""
    return (approver.active and approver.has_role("archivist") and approver.username != request.requester
            and approver.clearance > request.requester_clearance)


def pending_for(db: WebDb, approver: User) -> list[AccessRequest]:
    """The pending requests ``approver`` may decide, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM access_requests WHERE state = 'pending' ORDER BY id")
        return [r for r in map(_request, rows) if may_approve(approver, r)]


def _compact(text: str) -> str:
    """Casefolded, NFC, no spaces around the separators of a số/ký hiệu ("27 - NQ/TU" reads "27-nq/tu")."""
    return re.sub(r"\s*([-/])\s*", r"\1", " ".join(unicodedata.normalize("NFC", text).casefold().split()))


def candidates(settings: Settings, request: AccessRequest, principal: Principal) -> list[Candidate]:
    """The catalogued documents the request may be about, resolved with ``principal`` (the approver): the id they
    were given, and the documents whose số/ký hiệu (e.g. ``15-NQ/TU``) is in the requester's text. Only what the
    principal may see (``flows.access.visible_items``); at most ``MAX_CANDIDATES``."""
    from flows.wiring import open_existing_catalog

    catalog = open_existing_catalog(settings)
    if catalog is None:
        return []
    try:
        entries = visible_items(principal, catalog.entries(), lambda e: level_of_metadata(e.metadata))
    finally:
        catalog.close()
    wanted = _compact(request.reference)
    found = []
    for entry in entries:
        md = entry.metadata
        code = "-".join(str(md.get(k) or "") for k in ("code_number", "code_notation")).strip("-")
        by_code = bool(wanted) and bool(md.get("code_number")) and bool(md.get("code_notation")) and (
            re.search(rf"(?<![\w/-]){re.escape(_compact(code))}(?![\w/-])", wanted) is not None)
        if entry.id == request.doc_ref or by_code:
            found.append(Candidate(doc_id=entry.id, code=code, issued_date=str(md.get("issued_date") or ""),
                                   subject=str(md.get("subject") or ""),
                                   classification=str(md.get("classification") or "")))
    found.sort(key=lambda c: (c.doc_id != request.doc_ref, c.doc_id))
    return found[:MAX_CANDIDATES]


def _pending_for_decision(conn: Connection, approver: User, request_id: int) -> AccessRequest:
    row = conn.execute(f"SELECT {_COLUMNS} FROM access_requests WHERE id = ?", (request_id,)).fetchone()
    request = None if row is None else _request(row)
    if request is None or request.state != "pending":
        raise AccessRequestError(NOT_FOUND)
    if request.requester == approver.username:
        raise AccessRequestError(SELF)
    if not may_approve(approver, request):
        raise AccessRequestError(NOT_FOUND)  # the same answer as a request that does not exist
    if (approver.username in credential_holders(conn, request.requester)
            or request.requester in credential_holders(conn, approver.username)):
        raise AccessRequestError(CONTROLLED)
    return request


def grant(db: WebDb, settings: Settings, approver: User, request_id: int, doc_id: str, days: int,
          now: datetime) -> AccessRequest:
    """Grant the requester read-only access to ``doc_id`` (one of the request's ``candidates`` as the approver
    sees them) for ``days`` days from ``now``."""
    if not 1 <= days <= MAX_DAYS:
        raise AccessRequestError(BAD_DAYS)
    with db.connect() as conn:
        request = _pending_for_decision(conn, approver, request_id)
    if doc_id not in {c.doc_id for c in candidates(settings, request, approver.principal)}:
        raise AccessRequestError(NO_DOCUMENT)
    expires = iso(now + timedelta(days=days))
    with db.transaction() as conn:
        _pending_for_decision(conn, approver, request_id)  # still pending, under the write lock
        conn.execute("UPDATE access_requests SET state = 'granted', decided_by = ?, decided_at = ?, doc_id = ?, "
                     "expires_at = ? WHERE id = ? AND state = 'pending'",
                     (approver.username, iso(now), doc_id, expires, request_id))
    decided = get(db, request_id)
    assert decided is not None
    return decided


def refuse(db: WebDb, approver: User, request_id: int, reason: str, now: datetime) -> AccessRequest:
    """Refuse a pending request with a reason (shown to the requester)."""
    reason = _clean(reason)
    if not reason:
        raise AccessRequestError(NO_REASON)
    if len(reason) > MAX_PURPOSE:
        raise AccessRequestError(TOO_LONG)
    with db.transaction() as conn:
        _pending_for_decision(conn, approver, request_id)
        conn.execute("UPDATE access_requests SET state = 'refused', decided_by = ?, decided_at = ?, note = ? "
                     "WHERE id = ? AND state = 'pending'", (approver.username, iso(now), reason, request_id))
    decided = get(db, request_id)
    assert decided is not None
    return decided
