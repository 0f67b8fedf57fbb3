"""Local accounts (web app and CLI ``--as``): users with a role and a clearance, sessions, API tokens, login throttling.

Roles, each with the rights of the ones before it: ``staff`` (search, read, download the PDF/A), ``archivist``
(+ original files, the review queue, corrections), ``admin`` (+ accounts). ``clearance`` (0–3) is the highest
secrecy level (``schemas.search.SECRECY_LEVELS``) the user may see; every role defaults to 0 (unclassified only).
Clearance bounds admins too: the clearance gates at the end of this module (``gate_*``) say what an admin may do
alone, what needs a second admin (``flows.approvals``) and what is refused.

Passwords are hashed with Argon2id (argon2-cffi); session and API tokens are random and stored only as SHA-256.
"""

from __future__ import annotations

import getpass
import hashlib
import ipaddress
import math
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flows.access import ROLES, Principal, Role
from schemas.settings import Settings
from storage.accounts_db import WebDb, web_db_path

ROLE_LABELS: dict[str, str] = {"staff": "Cán bộ tra cứu", "archivist": "Lưu trữ viên", "admin": "Quản trị"}
_RANK = {role: rank for rank, role in enumerate(ROLES)}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 12  # issue 16; NIST SP 800-63B-4 asks 15 for a password that is the only factor

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

    @property
    def principal(self) -> Principal:
        """The user as the access policy sees them (``flows.access``)."""
        return Principal(name=self.username, role=self.role, clearance=self.clearance)


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


def local_operator() -> str:
    """How the local operator's ``sohoa user add`` / ``user passwd`` are recorded as the setter of a credential
    (``cli:<os user>``; a ``:`` is never in a username)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def credential_holders(conn: sqlite3.Connection, username: str) -> frozenset[str]:
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


def record_holder(conn: sqlite3.Connection, user_id: int, holder: str | None, how: str) -> None:
    """Add ``holder`` to the history of who held a credential of the account (nothing when unknown)."""
    if holder:
        conn.execute("INSERT INTO credential_holders(user_id, holder, at, how) VALUES (?,?,?,?)",
                     (user_id, holder, _now_iso(), how))


_COMMON_MESSAGE = ("Mật khẩu quá phổ biến hoặc dễ đoán (có trong danh sách mật khẩu hay bị lộ, là dãy ký tự lặp lại "
                   "hay liên tiếp): hãy chọn mật khẩu khác, ví dụ một câu gồm vài từ")
# Context words (NIST SP 800-63B: the service's name and its own words), checked like the common passwords.
_CONTEXT_WORDS = frozenset({"sohoa", "sohoatailieu", "thanhuy", "thanhuydanang", "danang", "luutru", "khoaluutru",
                            "tailieu", "matkhau", "matkhaumoi", "quantri", "quantrivien", "admin", "administrator"})
_SEQUENCES = ("0123456789" * 3, "9876543210" * 3, "abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba",
              "qwertyuiopasdfghjklzxcvbnm", "mnbvcxzlkjhgfdsapoiuytrewq", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
              "qazwsxedcrfvtgbyhnujmikolp", "azertyuiopqsdfghjklmwxcvbn")
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t",
                       "+": "t", "8": "b", "9": "g"})
_EDGE = "0123456789" + "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum()) + " \t"
_SEPARATORS = re.compile(r"[\s._\-+*/\\|,;:~=#&]+")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public breach corpora (zxcvbn's list, shipped in the ``zxcvbn`` package,
    MIT; read offline) plus the service's own words; lower case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    listed = FREQUENCY_LISTS["passwords"]
    words = listed.split(",") if isinstance(listed, str) else list(listed)
    return frozenset(w.strip().lower() for w in words if w.strip()) | _CONTEXT_WORDS


def _guessable(password: str) -> bool:
    """A listed password, or one made from a listed password by case, l33t spelling, separators or leading and
    trailing digits and symbols (``Password1234!``, ``P@ssw0rd``, ``mat-khau-2024``); a repetition of a short or
    listed piece (``abcabcabcabc``); a run of a keyboard row or of the alphabet or digits (``123456789012``)."""
    listed = common_passwords()
    lowered = password.casefold()
    core = lowered.strip(_EDGE)
    candidates = {lowered, core, _SEPARATORS.sub("", core), lowered.translate(_LEET), core.translate(_LEET),
                  _SEPARATORS.sub("", lowered.translate(_LEET)).strip(_EDGE)}
    if any(c in listed for c in candidates if c):
        return True
    if not core or len(set(lowered)) <= 3:
        return True  # digits and symbols only around nothing, or three characters over and over
    rest = _SEPARATORS.sub("", lowered)
    for word in sorted(_CONTEXT_WORDS, key=len, reverse=True):
        rest = rest.replace(word, "")
    if not rest.strip(_EDGE):
        return True  # only the service's own words, digits and symbols ("mat-khau-quan-tri", "sohoa-thanhuy-2024")
    unit = re.fullmatch(r"(.+?)\1+", lowered)
    if unit is not None and (len(unit.group(1)) <= 4 or unit.group(1) in listed):
        return True
    return any(lowered in sequence for sequence in _SEQUENCES)


def check_password_rules(password: str, username: str = "") -> None:
    """Refuse a password that is easy to guess (NIST SP 800-63B): shorter than ``MIN_PASSWORD`` characters, common
    (``common_passwords``, also in disguise), the user name or containing it. No other composition rule: a long
    phrase of ordinary words is a good password. ``AccountError`` with a Vietnamese message."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự")
    if len(password) > 1024:
        raise AccountError("Mật khẩu quá dài")
    name = normalise_username(username)
    lowered = password.casefold()
    if name and (lowered == name or (len(name) >= 4 and name in lowered)):
        raise AccountError("Mật khẩu không được là hoặc chứa tên đăng nhập")
    if _guessable(password):
        raise AccountError(_COMMON_MESSAGE)


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

    def _wait(self, conn: sqlite3.Connection, where: str, params: tuple[str, ...], limit: int, now: float) -> int:
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


# --- clearance gates ------------------------------------------------------------------------------------------
# An admin acting on the web (``by``) never grants a clearance above their own, never takes a credential (API token,
# password) of an account cleared above them, and never widens their own access, makes another admin, grants another
# account a classified clearance (creating it, raising it, unlocking it), demotes or locks another admin, mints a
# token for another account or resets another admin's password alone: ``NeedsSecondAdmin``, which
# ``flows.approvals`` turns into a request a second admin whose clearance covers it approves.

class NeedsSecondAdmin(AccountError):
    """Allowed once a second admin approves it (``flows.approvals`` records it as a pending request)."""


GRANT_ABOVE_OWN = "Không thể cấp mức mật cao hơn mức của chính mình"
ABOVE_OWN = "Tài khoản này có mức mật cao hơn mức của bạn"
GRANT_CLASSIFIED = "Cấp quyền xem tài liệu mật cho tài khoản khác cần một quản trị viên thứ hai phê duyệt"


def _widens(user: User, role: str, clearance: int, active: bool) -> bool:
    return _RANK[cast(Role, role)] > _RANK[user.role] or clearance > user.clearance or (active and not user.active)


def _narrows(user: User, role: str, clearance: int, active: bool) -> bool:
    return _RANK[cast(Role, role)] < _RANK[user.role] or clearance < user.clearance or (user.active and not active)


def gate_new_user(by: User, role: str, clearance: int) -> None:
    if clearance > by.clearance:
        raise AccountError(GRANT_ABOVE_OWN)
    if role == "admin":
        raise NeedsSecondAdmin("Tạo tài khoản quản trị cần một quản trị viên thứ hai phê duyệt")
    if clearance > 0:  # a freshly cleared account whose password the admin chose is a key to classified documents
        raise NeedsSecondAdmin(GRANT_CLASSIFIED)


def gate_update(by: User, user: User, *, role: str, clearance: int, active: bool) -> None:
    if user.id == by.id:
        if _widens(user, role, clearance, active):
            raise NeedsSecondAdmin("Nâng vai trò hoặc mức mật của chính mình cần một quản trị viên khác phê duyệt")
        return
    if clearance > user.clearance and clearance > by.clearance:
        raise AccountError(GRANT_ABOVE_OWN)
    if user.clearance > by.clearance and _widens(user, role, clearance, active):
        raise AccountError(f"{ABOVE_OWN}: chỉ có thể hạ quyền hoặc khóa tài khoản")
    if role == "admin" and user.role != "admin":
        raise NeedsSecondAdmin("Cấp quyền quản trị cần một quản trị viên thứ hai phê duyệt")
    if user.role == "admin" and _narrows(user, role, clearance, active):
        # any other admin, whatever their clearance: an admin demoted alone becomes an account whose password the
        # demoting admin may then reset alone (and so control)
        raise NeedsSecondAdmin("Hạ quyền, hạ mức mật hoặc khóa tài khoản quản trị khác cần một quản trị viên "
                               "thứ hai phê duyệt")
    if clearance > 0 and (clearance > user.clearance or (active and not user.active)):
        raise NeedsSecondAdmin(GRANT_CLASSIFIED)  # raising a classified clearance, or unlocking a cleared account


def gate_token(by: User, user: User) -> None:
    if user.clearance > by.clearance:
        raise AccountError(f"{ABOVE_OWN}: không thể tạo khóa API cho tài khoản này")
    if user.id != by.id:
        raise NeedsSecondAdmin("Khóa API cho tài khoản khác cần một quản trị viên thứ hai phê duyệt")


def gate_password(by: User, user: User) -> None:
    if user.id == by.id:
        return
    if user.clearance > by.clearance:
        raise AccountError(f"{ABOVE_OWN}: không thể đặt lại mật khẩu của tài khoản này")
    if user.role == "admin":
        raise NeedsSecondAdmin("Đặt lại mật khẩu của quản trị viên khác cần một quản trị viên thứ hai phê duyệt")


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
    return Accounts(WebDb(web_db_path(settings.archive_path())))


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
