"""The rules of local accounts, without storage: roles and their ranks, user names, the ``User`` record, the
password policy (NIST SP 800-63B: length, common and guessable passwords) and the clearance gates that say
what an admin may do alone, what needs a second admin (``flows.approvals``) and what is refused. The accounts
themselves: ``flows.accounts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from flows.access import ROLES, Principal, Role

ROLE_LABELS: dict[str, str] = {"staff": "Cán bộ tra cứu", "archivist": "Lưu trữ viên", "admin": "Quản trị"}
_RANK = {role: rank for rank, role in enumerate(ROLES)}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 12  # issue 16; NIST SP 800-63B-4 asks 15 for a password that is the only factor


class AccountError(ValueError):
    """A request about accounts that cannot be done (the message is Vietnamese, for the user)."""


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


def normalise_username(username: str) -> str:
    return username.strip().lower()


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
