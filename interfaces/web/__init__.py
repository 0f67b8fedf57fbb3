"""The web app for staff and archivists (FastAPI, server-rendered pages, REST API under ``/api``).

    create_app(settings)                       the ASGI app (tests, other servers)
    run_web(settings, host, port)              serve it with uvicorn (``sohoa web``)

Accounts (``add_user``, ``set_password``) are use cases of ``flows.accounts``, re-exported for scripts that import
them from here.
"""

from __future__ import annotations

from flows.accounts import ROLES, AccountError, NewUser, add_user, set_password
from interfaces.web.app import create_app
from interfaces.web.server import run_web

__all__ = ["ROLES", "AccountError", "NewUser", "add_user", "create_app", "run_web", "set_password"]
