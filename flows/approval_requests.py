"""The requests of the four-eyes rule (table ``approval_requests`` of ``web.sqlite3``): kinds, messages, the
``ApprovalRequest`` record, reading, inserting and closing requests, and which pending requests an admin may
see. The rule itself: ``flows.approvals``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from flows.access import TOP_LEVEL, Levels, visible_items
from flows.accounts import ROLE_LABELS, User, credential_holders
from schemas.search import SECRECY_LEVELS
from storage.accounts_db import WebDb
from storage.db_conn import Connection

CLASSIFICATION = "metadata.classification"
KINDS = ("declassify", "account", "create", "token", "password")
_SECRETS = ("password_hash", "token_hash")  # kept only while the request waits
_LEVEL_NAMES = {level: (name or "Thường") for name, level in SECRECY_LEVELS.items()}
NOT_FOUND = "Không tìm thấy yêu cầu đang chờ phê duyệt"
CONTROLLED = ("Không thể duyệt: bạn kiểm soát (hoặc đã kiểm soát) thông tin đăng nhập của người gửi yêu cầu (đã tạo "
              "tài khoản, đặt mật khẩu hoặc nhận khóa API của tài khoản đó), hoặc người gửi kiểm soát thông tin đăng "
              "nhập của bạn: cần một quản trị viên khác")
HELD_BY_YOU = ("Không thể gửi yêu cầu: bạn đang nắm thông tin đăng nhập của tài khoản này (đã tạo tài khoản, đặt "
               "mật khẩu hoặc nhận khóa API của tài khoản đó): cần một quản trị viên khác gửi yêu cầu")
TARGET_CONTROLLED = ("Không thể duyệt: bạn kiểm soát (hoặc đã kiểm soát) thông tin đăng nhập của tài khoản được "
                     "nâng quyền hoặc nhận khóa API: cần một quản trị viên khác")
TARGET_HELD = ("Không thể duyệt: người gửi yêu cầu đang nắm thông tin đăng nhập của tài khoản này: yêu cầu bị hủy")
HOLDERS = "requester_credentials_by"  # in a request's payload: who held a credential of the requester when it was made
STALE = "Đối tượng của yêu cầu đã thay đổi từ khi gửi: yêu cầu bị hủy, hãy gửi lại nếu vẫn cần"


class ApprovalError(ValueError):
    """An approval or rejection that cannot be done (the message is Vietnamese, for the admin)."""


class StaleRequest(ApprovalError):
    """What the request would change has changed since it was made: the request is cancelled."""


@dataclass(frozen=True)
class ApprovalRequest:
    id: int
    kind: str
    target: str  # a document id (declassify) or a username
    payload: dict[str, object]
    level: int  # the clearance an approver needs (at request time; checked again when approved)
    requested_by: str
    requested_at: str
    state: str  # pending | approved | rejected | cancelled
    decided_by: str | None
    decided_at: str | None
    note: str

    @property
    def summary(self) -> str:
        """What the request asks, in Vietnamese (no secret in it)."""
        p = self.payload
        if self.kind == "declassify":
            return (f"Hạ độ mật văn bản {self.target}: {_level_label(p.get('before'))} → "
                    f"{_level_label(p.get('after'))}")
        if self.kind == "account":
            state = "hoạt động" if p.get("active") else "khóa"
            return (f"Tài khoản {self.target}: {ROLE_LABELS.get(str(p.get('role')), str(p.get('role')))}, "
                    f"được xem đến {_LEVEL_NAMES.get(as_int(p.get('clearance')), '?')}, {state}")
        if self.kind == "create":
            role = ROLE_LABELS.get(str(p.get("role")), str(p.get("role"))).lower()
            return (f"Tạo tài khoản {role} {self.target}, được xem đến "
                    f"{_LEVEL_NAMES.get(as_int(p.get('clearance')), '?')}")
        if self.kind == "token":
            label = str(p.get("label") or "").strip()
            return f"Khóa API cho tài khoản {self.target}" + (f" ({label})" if label else "")
        return f"Đặt lại mật khẩu của quản trị viên {self.target}"

    def public_payload(self) -> dict[str, object]:
        return {k: v for k, v in self.payload.items() if k not in _SECRETS}


def as_int(value: object) -> int:
    return value if isinstance(value, int) else -1


def _level_label(classification: object) -> str:
    return str(classification) if classification else "không mật"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


REQUEST_COLUMNS = "id, kind, target, payload, level, requested_by, requested_at, state, decided_by, decided_at, note"


def request_of_row(row: tuple[object, ...]) -> ApprovalRequest:
    return ApprovalRequest(id=int(cast(int, row[0])), kind=str(row[1]), target=str(row[2]),
                           payload=json.loads(str(row[3])), level=int(cast(int, row[4])), requested_by=str(row[5]),
                           requested_at=str(row[6]), state=str(row[7]),
                           decided_by=None if row[8] is None else str(row[8]),
                           decided_at=None if row[9] is None else str(row[9]), note=str(row[10]))


def request_by_id(conn: Connection, request_id: int) -> ApprovalRequest | None:
    row = conn.execute(f"SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE id = ?", (request_id,)).fetchone()
    return None if row is None else request_of_row(row)


def insert_request(conn: Connection, kind: str, target: str, payload: dict[str, object], level: int,
                   requested_by: str) -> int:
    payload = {**payload, HOLDERS: sorted(credential_holders(conn, requested_by))}  # a later reset hides nothing
    cursor = conn.execute(
        "INSERT INTO approval_requests(kind, target, payload, level, requested_by, requested_at) VALUES (?,?,?,?,?,?)",
        (kind, target, json.dumps(payload, ensure_ascii=False, sort_keys=True), level, requested_by, _now()))
    return int(cast(int, cursor.lastrowid))


def close_request(conn: Connection, request: ApprovalRequest, state: str, by: str, note: str = "") -> bool:
    """Decide a pending request (its secrets are dropped); False when it was no longer pending."""
    cursor = conn.execute(
        "UPDATE approval_requests SET state = ?, decided_by = ?, decided_at = ?, note = ?, payload = ? "
        "WHERE id = ? AND state = 'pending'",
        (state, by, _now(), note, json.dumps(request.public_payload(), ensure_ascii=False, sort_keys=True),
         request.id))
    return cursor.rowcount == 1


def get(db: WebDb, request_id: int) -> ApprovalRequest | None:
    with db.connect() as conn:
        return request_by_id(conn, request_id)


def pending(db: WebDb) -> list[ApprovalRequest]:
    with db.connect() as conn:
        rows = conn.execute(f"SELECT {REQUEST_COLUMNS} FROM approval_requests WHERE state = 'pending' ORDER BY id")
        return [request_of_row(r) for r in rows]


def pending_for_document(db: WebDb, doc_id: str) -> list[ApprovalRequest]:
    """The declassification requests of a document waiting for a second admin (the review form names them)."""
    return [r for r in pending(db) if r.kind == "declassify" and r.target == doc_id]


def request_level(request: ApprovalRequest, levels: Levels) -> int:
    """The clearance that request's details need now: for a declassification, the document's current level too (a
    document no longer catalogued counts as the top level)."""
    if request.kind != "declassify":
        return request.level
    current = levels(request.target)
    return max(request.level, TOP_LEVEL if current is None else current)


def visible_pending(db: WebDb, viewer: User, levels: Levels) -> list[ApprovalRequest]:
    """Pending requests an admin may see: those their clearance covers (``flows.access.visible_items``), and their
    own account requests (a request to raise one's own clearance names no document)."""
    requests = pending(db)
    covered = {r.id for r in visible_items(viewer.principal, requests, lambda r: request_level(r, levels))}
    return [r for r in requests
            if r.id in covered or (r.requested_by == viewer.username and r.kind != "declassify")]
