"""Local accounts of the web app: users with a role and a clearance, sessions, API tokens, login throttling.

Roles, each with the rights of the ones before it: ``staff`` (search, read, download the PDF/A), ``archivist``
(+ original files, the review queue, corrections), ``admin`` (+ accounts). ``clearance`` (0–3) is the highest
secrecy level (``schemas.search.SECRECY_LEVELS``) the user may see; every role defaults to 0 (unclassified only).

Passwords are hashed with Argon2id (argon2-cffi); session and API tokens are random and stored only as SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flows.web.db import WebDb

Role = Literal["staff", "archivist", "admin"]
ROLES: tuple[Role, ...] = ("staff", "archivist", "admin")
ROLE_LABELS: dict[str, str] = {"staff": "Cán bộ tra cứu", "archivist": "Lưu trữ viên", "admin": "Quản trị"}
_RANK = {role: rank for rank, role in enumerate(ROLES)}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("sohoa-dummy-password")  # verified for unknown users, so timing tells nothing


class AccountError(ValueError):
    """A request about accounts that cannot be done (the message is Vietnamese, for the user)."""


class LoginThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    clearance: int
    active: bool
    created_at: str

    def has_role(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


@dataclass(frozen=True)
class TokenInfo:
    label: str
    created_at: str
    last_used: str | None
    key: str  # first characters of the token's hash: names it on the admin page, revokes it


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_USER_COLUMNS = "id, username, role, clearance, active, created_at"


def _user(row: tuple[object, ...]) -> User:
    return User(id=int(cast(int, row[0])), username=str(row[1]), role=cast(Role, str(row[2])),
                clearance=int(cast(int, row[3])), active=bool(row[4]), created_at=str(row[5]))


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự")
    if len(password) > 1024:
        raise AccountError("Mật khẩu quá dài")


class Accounts:
    def __init__(self, db: WebDb, *, session_s: float = 12 * 3600, attempts: int = 5, window_s: float = 900) -> None:
        self.db = db
        self.session_s = session_s
        self.attempts = attempts
        self.window_s = window_s

    # --- users -------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, *, clearance: int = 0) -> User:
        name = normalise_username(username)
        if not USERNAME_RE.match(name):
            raise AccountError("Tên đăng nhập gồm 2–32 chữ thường không dấu, số, dấu chấm, gạch ngang hoặc gạch dưới")
        if role not in ROLES:
            raise AccountError(f"Vai trò không hợp lệ: {role} (staff, archivist hoặc admin)")
        if not 0 <= clearance <= 3:
            raise AccountError("Mức được xem tài liệu mật phải từ 0 đến 3")
        check_password_rules(password)
        try:
            with self.db.connect() as conn:
                conn.execute(
                    "INSERT INTO users(username, password_hash, role, clearance, active, created_at) "
                    "VALUES (?,?,?,?,1,?)", (name, _hasher.hash(password), role, clearance, _now_iso()))
        except sqlite3.IntegrityError as exc:
            raise AccountError(f"Tài khoản {name} đã tồn tại") from exc
        user = self.find_user(name)
        assert user is not None
        return user

    def find_user(self, username: str) -> User | None:
        with self.db.connect() as conn:
            row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?",
                               (normalise_username(username),)).fetchone()
        return None if row is None else _user(row)

    def _user_by_id(self, conn: sqlite3.Connection, user_id: int) -> User | None:
        row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self.db.connect() as conn:
            rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    def count(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])

    def update_user(self, username: str, *, role: str, clearance: int, active: bool) -> User:
        if role not in ROLES or not 0 <= clearance <= 3:
            raise AccountError("Vai trò hoặc mức được xem tài liệu mật không hợp lệ")
        user = self._require(username)
        with self.db.transaction() as conn:
            if user.role == "admin" and (role != "admin" or not active):
                admins = conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1").fetchone()[0]
                if admins <= 1:
                    raise AccountError("Không thể bỏ quyền quản trị của tài khoản quản trị cuối cùng")
            conn.execute("UPDATE users SET role = ?, clearance = ?, active = ? WHERE id = ?",
                         (role, clearance, int(active), user.id))
            if not active:
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
        updated = self.find_user(username)
        assert updated is not None
        return updated

    def set_password(self, username: str, password: str) -> None:
        """Reset a password; every session of the user ends."""
        check_password_rules(password)
        user = self._require(username)
        with self.db.transaction() as conn:
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user.id))
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    def _require(self, username: str) -> User:
        user = self.find_user(username)
        if user is None:
            raise AccountError(f"Không có tài khoản {username}")
        return user

    # --- login -------------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, ip: str) -> User | None:
        """The user if the password is right; ``None`` otherwise. ``LoginThrottled`` once the address has failed
        ``attempts`` times for this account within ``window_s`` (checked before the password)."""
        name = normalise_username(username)[:64]
        now = time.time()
        with self.db.connect() as conn:
            conn.execute("DELETE FROM login_failures WHERE at < ?", (now - self.window_s,))
            failures = conn.execute("SELECT count(*), min(at) FROM login_failures WHERE ip = ? AND username = ?",
                                    (ip, name)).fetchone()
            if failures[0] >= self.attempts:
                raise LoginThrottled(max(1, int(failures[1] + self.window_s - now)))
            row = conn.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                               (name,)).fetchone()
        stored = str(row[6]) if row is not None else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password) and row is not None and bool(row[4])
        except (VerificationError, InvalidHashError):
            ok = False
        with self.db.connect() as conn:
            if not ok:
                conn.execute("INSERT INTO login_failures(ip, username, at) VALUES (?,?,?)", (ip, name, now))
                return None
            conn.execute("DELETE FROM login_failures WHERE ip = ? AND username = ?", (ip, name))
            if _hasher.check_needs_rehash(stored):
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), row[0]))
        return _user(row[:6])

    # --- sessions ----------------------------------------------------------------------------------------
    def create_session(self, user: User) -> tuple[str, str]:
        """A new session (token for the cookie, CSRF token for the forms)."""
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self.db.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE last_seen < ?", (now - self.session_s,))
            conn.execute("INSERT INTO sessions VALUES (?,?,?,?,?)", (_digest(token), user.id, csrf, now, now))
        return token, csrf

    def session_user(self, token: str) -> tuple[User, str] | None:
        """(user, CSRF token) of a live session of an active user."""
        if not token or len(token) > 200:
            return None
        now = time.time()
        with self.db.connect() as conn:
            row = conn.execute("SELECT user_id, csrf, last_seen FROM sessions WHERE token_hash = ?",
                               (_digest(token),)).fetchone()
            if row is None or row[2] < now - self.session_s:
                return None
            user = self._user_by_id(conn, int(row[0]))
            if user is None or not user.active:
                return None
            if now - row[2] > 60:
                conn.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, _digest(token)))
        return user, str(row[1])

    def end_session(self, token: str) -> None:
        with self.db.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))

    # --- API tokens --------------------------------------------------------------------------------------
    def create_token(self, username: str, label: str = "") -> str:
        """A new API token for ``Authorization: Bearer``; shown once, only its hash is kept."""
        user = self._require(username)
        token = "sohoa_" + secrets.token_urlsafe(32)
        with self.db.connect() as conn:
            conn.execute("INSERT INTO api_tokens VALUES (?,?,?,?,NULL)",
                         (_digest(token), user.id, label.strip()[:80], _now_iso()))
        return token

    def token_user(self, token: str) -> User | None:
        if not token.startswith("sohoa_") or len(token) > 200:
            return None
        with self.db.connect() as conn:
            row = conn.execute("SELECT user_id, last_used FROM api_tokens WHERE token_hash = ?",
                               (_digest(token),)).fetchone()
            if row is None:
                return None
            user = self._user_by_id(conn, int(row[0]))
            now = _now_iso()
            if row[1] is None or row[1][:16] != now[:16]:
                conn.execute("UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", (now, _digest(token)))
        return user if user is not None and user.active else None

    def tokens(self, username: str) -> list[TokenInfo]:
        user = self._require(username)
        with self.db.connect() as conn:
            rows = conn.execute("SELECT label, created_at, last_used, token_hash FROM api_tokens WHERE user_id = ? "
                                "ORDER BY created_at", (user.id,)).fetchall()
        return [TokenInfo(label=str(r[0]), created_at=str(r[1]), last_used=r[2], key=str(r[3])[:12]) for r in rows]

    def revoke_token(self, username: str, key: str) -> None:
        user = self._require(username)
        if not re.fullmatch(r"[0-9a-f]{12}", key):
            raise AccountError("Mã khóa API không hợp lệ")
        with self.db.connect() as conn:
            conn.execute("DELETE FROM api_tokens WHERE user_id = ? AND substr(token_hash, 1, 12) = ?", (user.id, key))

    # --- bootstrap ---------------------------------------------------------------------------------------
    def ensure_admin(self, username: str, password: str) -> User | None:
        """Create the first admin when there is no account at all (``SOHOA_ADMIN_PASSWORD``); else nothing."""
        if self.count() > 0:
            return None
        return self.create_user(username, password, "admin")
