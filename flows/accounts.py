"""Local accounts (web app and CLI ``--as``): users with a role and a clearance, sessions, API tokens, login throttling.

Roles, each with the rights of the ones before it: ``staff`` (search, read, download the PDF/A), ``archivist``
(+ original files, the review queue, corrections), ``admin`` (+ accounts). ``clearance`` (0–3) is the highest
secrecy level (``schemas.search.SECRECY_LEVELS``) the user may see; every role defaults to 0 (unclassified only).
Clearance bounds admins too: the clearance gates (``gate_*``, in ``flows.account_rules`` with the password policy
and the ``User`` record; re-exported here) say what an admin may do alone, what needs a second admin
(``flows.approvals``) and what is refused.

Passwords are hashed with Argon2id (argon2-cffi); session and API tokens are random and stored only as SHA-256.
"""

from __future__ import annotations

import getpass
import hashlib
import ipaddress
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flows.access import ROLES, Role
from flows.account_rules import (
    ABOVE_OWN,
    GRANT_ABOVE_OWN,
    GRANT_CLASSIFIED,
    MIN_PASSWORD,
    ROLE_LABELS,
    USERNAME_RE,
    AccountError,
    NeedsSecondAdmin,
    User,
    check_password_rules,
    common_passwords,
    gate_new_user,
    gate_password,
    gate_token,
    gate_update,
    normalise_username,
)
from schemas.settings import Settings
from storage.accounts_db import WebDb
from storage.db import IntegrityError
from storage.db_conn import Connection

_hasher = PasswordHasher()


_DUMMY_HASH = _hasher.hash("sohoa-dummy-password")  # verified for unknown users, so timing tells nothing


class LoginThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


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


def local_operator() -> str:
    """How the local operator's ``sohoa user add`` / ``user passwd`` are recorded as the setter of a credential
    (``cli:<os user>``; a ``:`` is never in a username)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def credential_holders(conn: Connection, username: str) -> frozenset[str]:
    """Who ever held a credential of the account, as recorded (table ``credential_holders``, append-only): who
    created it (chose its first password), who ever set its password, who was ever shown one of its API tokens,
    revoked or not. A later reset, or the user changing their own password, adds a holder and removes no one.
    Usernames, or ``cli:``/``env:`` for the local operator; nothing for what was made before it was recorded.
    ``flows.approvals`` refuses an approver who holds a credential of the requester, or whose credential the
    requester holds, and a holder's request to widen the account's access."""
    row = conn.execute("SELECT id FROM users WHERE username = ?", (normalise_username(username),)).fetchone()
    if row is None:
        return frozenset()
    rows = conn.execute("SELECT DISTINCT holder FROM credential_holders WHERE user_id = ?", (row[0],))
    return frozenset(str(r[0]) for r in rows if r[0])


def record_holder(conn: Connection, user_id: int, holder: str | None, how: str) -> None:
    """Add ``holder`` to the history of who held a credential of the account (nothing when unknown)."""
    if holder:
        conn.execute("INSERT INTO credential_holders(user_id, holder, at, how) VALUES (?,?,?,?)",
                     (user_id, holder, _now_iso(), how))


def throttle_address(ip: str) -> str:
    """The address failed logins are counted under: an IPv6 address's /64 network (what one subscriber or host
    is given, so rotating inside it changes nothing), an IPv4-mapped address's IPv4 address, else the address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Accounts:
    def __init__(self, db: WebDb, *, session_s: float = 12 * 3600, attempts: int = 5, window_s: float = 900,
                 account_attempts: int = 10, address_attempts: int = 20) -> None:
        self.db = db
        self.session_s = session_s
        self.attempts = attempts  # failed logins per address and account within window_s
        self.account_attempts = account_attempts  # ... per account, from any address
        self.address_attempts = address_attempts  # ... per address, for any account (password spraying)
        self.window_s = window_s

    # --- users -------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, *, clearance: int = 0,
                    by: User | None = None, recorded_by: str | None = None) -> User:
        """A new account. ``by``: the admin creating it (``gate_new_user``); ``None``: the local operator
        (``sohoa user add``, the first admin) or a creation a second admin approved (``flows.approvals``).
        ``recorded_by``: who chose the password when ``by`` is ``None`` (``created_by``, ``password_set_by``)."""
        name = self.check_new_user(username, role, clearance)
        check_password_rules(password, name)  # before the gate: a weak password never waits for a second admin
        if by is not None:
            gate_new_user(by, role, clearance)
        return self.create_user_hashed(name, hash_password(password), role, clearance=clearance,
                                       created_by=by.username if by is not None else recorded_by)

    def check_new_user(self, username: str, role: str, clearance: int) -> str:
        """The normalised name of an account that may be created (``AccountError`` otherwise)."""
        name = normalise_username(username)
        if not USERNAME_RE.match(name):
            raise AccountError("Tên đăng nhập gồm 2–32 chữ thường không dấu, số, dấu chấm, gạch ngang hoặc gạch dưới")
        if role not in ROLES:
            raise AccountError(f"Vai trò không hợp lệ: {role} (staff, archivist hoặc admin)")
        if not 0 <= clearance <= 3:
            raise AccountError("Mức được xem tài liệu mật phải từ 0 đến 3")
        if self.find_user(name) is not None:
            raise AccountError(f"Tài khoản {name} đã tồn tại")
        return name

    def create_user_hashed(self, username: str, password_hash: str, role: str, *, clearance: int,
                           created_by: str | None = None) -> User:
        """Insert an account whose password is already hashed (``hash_password``); no gate: callers decide.
        ``created_by``: who chose the password (recorded as its creator and the setter of its password)."""
        name = normalise_username(username)
        try:
            with self.db.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO users(username, password_hash, role, clearance, active, created_at, created_by, "
                    "password_set_by) VALUES (?,?,?,?,1,?,?,?)",
                    (name, password_hash, role, clearance, _now_iso(), created_by, created_by))
                record_holder(conn, int(cast(int, cursor.lastrowid)), created_by, "create")
        except IntegrityError as exc:
            raise AccountError(f"Tài khoản {name} đã tồn tại") from exc
        user = self.find_user(name)
        assert user is not None
        return user

    def find_user(self, username: str) -> User | None:
        with self.db.connect() as conn:
            row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?",
                               (normalise_username(username),)).fetchone()
        return None if row is None else _user(row)

    def _user_by_id(self, conn: Connection, user_id: int) -> User | None:
        row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self.db.connect() as conn:
            rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    def count(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])

    def update_user(self, username: str, *, role: str, clearance: int, active: bool, by: User | None = None) -> User:
        """Change an account's role, clearance and state. ``by``: the admin changing it (``gate_update``);
        ``None``: the local operator or a change a second admin approved (``flows.approvals``)."""
        if role not in ROLES or not 0 <= clearance <= 3:
            raise AccountError("Vai trò hoặc mức được xem tài liệu mật không hợp lệ")
        user = self._require(username)
        if by is not None:
            gate_update(by, user, role=role, clearance=clearance, active=active)
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

    def set_password(self, username: str, password: str, *, by: User | None = None,
                     recorded_by: str | None = None) -> None:
        """Reset a password; every session of the user ends. ``by``: the admin resetting it (``gate_password``);
        ``None``: the local operator (``sohoa user passwd``), named by ``recorded_by`` (``password_set_by``)."""
        check_password_rules(password, username)
        user = self._require(username)
        if by is not None:
            gate_password(by, user)
        self.set_password_hash(user.username, _hasher.hash(password),
                               set_by=by.username if by is not None else recorded_by)

    def set_password_hash(self, username: str, password_hash: str, *, set_by: str | None = None) -> None:
        """Set an already hashed password (``hash_password``; a reset a second admin approved); sessions end.
        ``set_by``: who chose the password (``password_set_by``)."""
        user = self._require(username)
        with self.db.transaction() as conn:
            conn.execute("UPDATE users SET password_hash = ?, password_set_by = ? WHERE id = ?",
                         (password_hash, set_by, user.id))
            record_holder(conn, user.id, set_by, "password")  # the earlier holders stay
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    def _require(self, username: str) -> User:
        user = self.find_user(username)
        if user is None:
            raise AccountError(f"Không có tài khoản {username}")
        return user

    # --- login -------------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, ip: str) -> User | None:
        """The user if the password is right; ``None`` otherwise. ``LoginThrottled`` (checked before the password)
        once, within ``window_s``, there were ``attempts`` failures of this account from this address,
        ``account_attempts`` of this account from any address, or ``address_attempts`` from this address for any
        account (password spraying). Addresses are counted by ``throttle_address`` (an IPv6 /64 is one address).

        The attempt is recorded as a failure before the password is verified, in the transaction that checked the
        counts, so a burst of parallel guesses cannot all pass the check; a success removes it again."""
        name = normalise_username(username)[:64]
        address = throttle_address(ip)
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at < ?", (now - self.window_s,))
            wait = max(self._wait(conn, "ip = ? AND username = ?", (address, name), self.attempts, now),
                       self._wait(conn, "username = ?", (name,), self.account_attempts, now),
                       self._wait(conn, "ip = ?", (address,), self.address_attempts, now))
            if not wait:
                conn.execute("INSERT INTO login_failures(ip, username, at) VALUES (?,?,?)", (address, name, now))
            row = conn.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?",
                               (name,)).fetchone()
        if wait:
            raise LoginThrottled(wait)
        stored = str(row[6]) if row is not None else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password) and row is not None and bool(row[4])
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            return None
        with self.db.connect() as conn:
            conn.execute("DELETE FROM login_failures WHERE ip = ? AND username = ?", (address, name))
            if _hasher.check_needs_rehash(stored):
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), row[0]))
        return _user(row[:6])

    def _wait(self, conn: Connection, where: str, params: tuple[str, ...], limit: int, now: float) -> int:
        """Seconds until fewer than ``limit`` recent failures match ``where``; 0 when there are fewer already."""
        count = int(conn.execute(f"SELECT count(*) FROM login_failures WHERE {where}", params).fetchone()[0])
        if count < limit:
            return 0
        expires = conn.execute(f"SELECT at FROM login_failures WHERE {where} ORDER BY at LIMIT 1 OFFSET ?",
                               (*params, count - limit)).fetchone()[0]
        return max(1, math.ceil(expires + self.window_s - now))

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
    def create_token(self, username: str, label: str = "", *, by: User | None = None,
                     recorded_by: str | None = None) -> str:
        """A new API token for ``Authorization: Bearer``; shown once, only its hash is kept. ``by``: the admin
        minting it (``gate_token``); ``None``: the local operator (``sohoa user add --token``), named by
        ``recorded_by``. Whoever it is shown to is recorded as its ``created_by``."""
        user = self._require(username)
        if by is not None:
            gate_token(by, user)
        token, token_hash = new_api_token()
        self.install_token(user.username, label, token_hash, created_by=by.username if by is not None else recorded_by)
        return token

    def install_token(self, username: str, label: str, token_hash: str, *, created_by: str | None = None) -> None:
        """Make a token minted earlier (``new_api_token``; a request a second admin approved) valid.
        ``created_by``: who was shown the token."""
        user = self._require(username)
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO api_tokens(token_hash, user_id, label, created_at, last_used, created_by) "
                         "VALUES (?,?,?,?,NULL,?)", (token_hash, user.id, label.strip()[:80], _now_iso(), created_by))
            record_holder(conn, user.id, created_by, "token")

    def credential_holders(self, username: str) -> frozenset[str]:
        """Who ever held a credential of the account (``credential_holders``)."""
        with self.db.connect() as conn:
            return credential_holders(conn, username)

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
        return self.create_user(username, password, "admin", recorded_by="env:SOHOA_ADMIN_PASSWORD")


def hash_password(password: str) -> str:
    """The Argon2id hash of an acceptable password (``AccountError`` otherwise)."""
    check_password_rules(password)
    return _hasher.hash(password)


def new_api_token() -> tuple[str, str]:
    """A fresh API token and the hash under which it is stored."""
    token = "sohoa_" + secrets.token_urlsafe(32)
    return token, _digest(token)


@dataclass(frozen=True)
class NewUser:
    username: str
    role: str
    clearance: int
    token: str | None  # an API token, when asked for (shown once)


def accounts_of(settings: Settings) -> Accounts:
    from flows.wiring import open_accounts_db

    return Accounts(open_accounts_db(settings))


def add_user(settings: Settings, username: str, password: str, role: str, *, clearance: int = 0,
             api_token: bool = False) -> NewUser:
    """Create a local account (``AccountError`` with a Vietnamese message when it cannot be created).

    The local operator's bootstrap (``sohoa user add``): like the operator's other commands it is cleared for every
    level (``flows.access.local_operator``), so no clearance gate and no second admin apply; the CLI records it in
    the audit trail. Admins on the web go through ``flows.approvals`` instead."""
    accounts = accounts_of(settings)
    operator = local_operator()
    user = accounts.create_user(username, password, role, clearance=clearance, recorded_by=operator)
    token = accounts.create_token(user.username, "sohoa user add", recorded_by=operator) if api_token else None
    return NewUser(username=user.username, role=user.role, clearance=user.clearance, token=token)


def set_password(settings: Settings, username: str, password: str) -> None:
    accounts_of(settings).set_password(username, password, recorded_by=local_operator())


__all__ = [
    "ABOVE_OWN", "GRANT_ABOVE_OWN", "GRANT_CLASSIFIED", "MIN_PASSWORD", "ROLES", "ROLE_LABELS", "USERNAME_RE",
    "AccountError", "Accounts", "LoginThrottled", "NeedsSecondAdmin", "NewUser", "Role", "TokenInfo", "User",
    "accounts_of", "add_user", "check_password_rules", "common_passwords", "credential_holders", "gate_new_user",
    "gate_password", "gate_token", "gate_update", "hash_password", "local_operator", "new_api_token",
    "normalise_username", "record_holder", "set_password", "throttle_address"
]
