"""Who is asking: the session cookie (pages) or an API token (``Authorization: Bearer``), roles and CSRF."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from flows.accounts import Role, User
from interfaces.web.service import WebState

SESSION_COOKIE = "sohoa_session"
LOGIN_COOKIE = "sohoa_login"  # double-submit CSRF token of the login form (there is no session yet)


class LoginRequired(Exception):
    """No session: pages redirect to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    token: str


def state_of(request: Request) -> WebState:
    state = request.app.state.web
    assert isinstance(state, WebState)
    return state


def client_ip(request: Request) -> str:
    """The address the request came from, for throttling and the audit trail: the TCP peer, or the client a
    trusted proxy (``SOHOA_TRUSTED_PROXIES``, applied by ``create_app``) named. Normalised (an IPv4-mapped IPv6
    address is its IPv4 address); anything that is not an IP address (a test client, a Unix socket) is kept only
    as a short printable label, "?" when there is none."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        label = "".join(c for c in host if c.isascii() and (c.isalnum() or c in "._-:"))[:64]
        return label or "?"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def audit(request: Request, actor: str, action: str, target: str = "",
          details: dict[str, object] | None = None) -> None:
    """Record a web action (who, from which address, what) in the archive's audit trail before answering."""
    state_of(request).audit.append(actor=actor, source=f"web:{client_ip(request)}", action=action, target=target,
                                   details=details)


def safe_next(url: str | None) -> str:
    """Only a local path may be a redirect target (no ``//host`` or ``scheme:``)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or any(c < " " for c in url):
        return "/search"
    return url


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_session(request: Request) -> Session:
    """Dependency of every page: the logged-in user, or a redirect to the login form."""
    token = request.cookies.get(SESSION_COOKIE, "")
    found = state_of(request).accounts.session_user(token) if token else None
    if found is None:
        raise LoginRequired(_here(request))
    return Session(user=found[0], csrf=found[1], token=token)


bearer_scheme = HTTPBearer(auto_error=False, scheme_name="token",
                           description="Khóa API (quản trị viên tạo cho từng tài khoản)")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def api_user(request: Request,
             credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> User:  # noqa: B008
    """Dependency of the API: an API token, else the browser's session; 401 otherwise."""
    state = state_of(request)
    token = _bearer(request)
    user = state.accounts.token_user(token) if token else None
    if user is None and token is None:
        session = state.accounts.session_user(request.cookies.get(SESSION_COOKIE, ""))
        user = session[0] if session else None
    if user is None:
        raise HTTPException(401, "Cần đăng nhập hoặc khóa API hợp lệ", headers={"WWW-Authenticate": "Bearer"})
    return user


def requester(request: Request) -> str:
    """The name of whoever sent the request (token, else session), for the audit trail; ``-`` when anonymous."""
    state = state_of(request)
    token = _bearer(request)
    if token:
        user = state.accounts.token_user(token)
    else:
        session = state.accounts.session_user(request.cookies.get(SESSION_COOKIE, ""))
        user = session[0] if session else None
    return user.username if user is not None else "-"


def reader(request: Request) -> User:
    """Dependency of file routes (page images, downloads): an API token or the session (else the login form)."""
    if _bearer(request) is not None:
        return api_user(request, None)
    return current_session(request).user


def require_role(user: User, role: Role) -> None:
    if not user.has_role(role):
        raise HTTPException(403, "Bạn không có quyền thực hiện thao tác này")


def check_csrf(session_csrf: str, submitted: str) -> None:
    if not submitted or not hmac.compare_digest(session_csrf.encode(), submitted.encode()):
        raise HTTPException(403, "Biểu mẫu đã hết hạn hoặc không hợp lệ: tải lại trang rồi thử lại")


def set_cookie(response: Response, state: WebState, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=state.web.web_secure_cookies, path="/")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(safe_next(next_url), safe="")
