"""Entry points for the CLI: ``run_web`` (serve the app with uvicorn) and ``add_user`` (create an account)."""

from __future__ import annotations

from dataclasses import dataclass

from flows.web.accounts import Accounts
from flows.web.config import WebSettings
from flows.web.db import WebDb, web_db_path
from schemas.settings import Settings


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
    """Create a local account (``AccountError`` with a Vietnamese message when it cannot be created)."""
    accounts = accounts_of(settings)
    user = accounts.create_user(username, password, role, clearance=clearance)
    token = accounts.create_token(user.username, "sohoa user add") if api_token else None
    return NewUser(username=user.username, role=user.role, clearance=user.clearance, token=token)


def set_password(settings: Settings, username: str, password: str) -> None:
    accounts_of(settings).set_password(username, password)


def run_web(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the web app until interrupted (one process; put a TLS proxy in front and set
    ``SOHOA_WEB_SECURE_COOKIES=true`` when it is reached over a network)."""
    import uvicorn

    from flows.web.app import create_app

    app = create_app(settings, WebSettings())
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True, server_header=False)
