"""The web app for staff and archivists: ``create_app(settings)`` builds it (FastAPI, server-rendered pages, a
REST API under ``/api``, OpenAPI at ``/openapi.json`` and a local Swagger UI at ``/docs``, both for logged-in users
and API tokens only).

Everything is served from this process: templates, CSS, JS and the Swagger UI assets (no CDN, no web fonts).
``X-Forwarded-For`` / ``X-Forwarded-Proto`` are read only from the proxies of ``SOHOA_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from flows.access import Rule, access_rule
from flows.accounts import AccountError, User
from flows.corrections import EditError
from interfaces.web.auth import LoginRequired, api_user, audit, login_url, reader, requester
from interfaces.web.config import WebSettings
from interfaces.web.render import local_time_filter, show_value
from interfaces.web.review import resync
from interfaces.web.service import WebState
from schemas.errors import ConfigError, NotFoundError, SohoaError
from schemas.reasons import describe
from schemas.settings import Settings

HERE = Path(__file__).parent
log = logging.getLogger("sohoa.web")

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def _swagger_assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def create_app(settings: Settings, web: WebSettings | None = None) -> FastAPI:
    """The web app over the archive of ``settings`` (accounts in ``ARCHIVE/web.sqlite3``).

    With ``SOHOA_ADMIN_PASSWORD`` set and no account yet, the first admin (``SOHOA_ADMIN_USER``, default
    ``admin``) is created. Corrections are re-applied to the catalog and index at start (``review.resync``)."""
    web = web or settings  # the web settings are part of Settings
    state = _open_state(settings, web)
    app = FastAPI(title="sohoa", summary="Tra cứu và soát xét tài liệu lưu trữ số hóa", version="1",
                  docs_url=None, redoc_url=None, openapi_url=None)  # /openapi.json below, behind a login
    app.state.web = state
    templates = _templates(settings)
    app.state.templates = templates
    _mount_assets_and_docs(app, templates)
    _include_routers(app)
    _add_middleware(app, web)
    _add_exception_handlers(app, templates)
    _add_root_routes(app)
    return app


def _open_state(settings: Settings, web: WebSettings) -> WebState:
    """The app's state: accounts with the login limits of ``web``, the first admin when asked for and there is
    none yet, and the archivists' corrections re-applied to the catalog and index."""
    state = WebState.build(settings, web)
    state.accounts.account_attempts = web.web_login_account_attempts
    state.accounts.address_attempts = web.web_login_address_attempts
    password = web.admin_password.get_secret_value() if web.admin_password is not None else ""
    try:
        if password and state.accounts.ensure_admin(web.admin_user, password):
            log.info("created the first admin account %s", web.admin_user)
    except AccountError as exc:  # e.g. a common password: say which setting, never start without an admin
        raise ConfigError(f"SOHOA_ADMIN_PASSWORD / SOHOA_ADMIN_USER: {exc}",
                          fix="đặt mật khẩu khác cho tài khoản quản trị đầu tiên rồi khởi động lại") from exc
    from flows.wiring import archive_has_catalog

    if archive_has_catalog(settings):
        resync(state)
    return state


def _templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["localtime"] = local_time_filter(settings.timezone)
    templates.env.filters["show"] = show_value
    templates.env.filters["describe"] = describe  # review reasons, held and failure causes: codes in Vietnamese
    return templates


def _mount_assets_and_docs(app: FastAPI, templates: Jinja2Templates) -> None:
    """The app's CSS/JS, the local Swagger UI (when its assets are installed) and the OpenAPI document, both for
    logged-in users and API tokens only."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    assets = _swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="apidocs")

        @app.get("/docs", include_in_schema=False)
        @access_rule(Rule.NO_DOCUMENT_DATA)
        def docs(request: Request, user: Annotated[User, Depends(reader)]) -> Response:
            return templates.TemplateResponse(request, "docs.html", {})

    @app.get("/openapi.json", include_in_schema=False)
    @access_rule(Rule.NO_DOCUMENT_DATA)
    def openapi_spec(user: Annotated[User, Depends(api_user)]) -> JSONResponse:
        return JSONResponse(app.openapi())


def _include_routers(app: FastAPI) -> None:
    from interfaces.web import (
        admin,
        api,
        batches_page,
        dashboard_page,
        files_pages,
        pages,
        requests_pages,
        reviewing,
        scan_review,
    )

    app.include_router(pages.router)
    app.include_router(reviewing.router)
    app.include_router(scan_review.router)
    app.include_router(admin.router)
    app.include_router(batches_page.router)
    app.include_router(files_pages.router)
    app.include_router(dashboard_page.router)
    app.include_router(requests_pages.router)
    app.include_router(api.router)


def _add_middleware(app: FastAPI, web: WebSettings) -> None:
    """Security headers on every response; behind trusted proxies, the client they name."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if "cache-control" not in response.headers:  # pages never cached; the app's own CSS/JS for an hour
            static = request.url.path.startswith(("/static/", "/docs-assets/"))
            response.headers["Cache-Control"] = "private, max-age=3600" if static else "no-store"
        return response

    if web.trusted_proxy_list:  # outermost: every handler and the audit trail see the client the proxy named
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=web.trusted_proxy_list)


def _add_exception_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Errors as the error page (JSON under ``/api/`` and for ``/openapi.json``), with Vietnamese messages."""

    def _error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            return JSONResponse({"detail": message}, status_code=status)
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                          status_code=status)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):  # FastAPI's documented 422 body (which parameter, why)
            return await request_validation_exception_handler(request, exc)
        names = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        return _error(request, 422, "Tham số không hợp lệ" + (f": {', '.join(names)}" if names else ""))

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        # a probe of a hidden document and of a missing one: the same answer and the same audit entry
        audit(request, requester(request), "not_found", request.url.path[:200])
        return _error(request, 404, "Không tìm thấy văn bản")

    @app.exception_handler(EditError)
    async def bad_edit(request: Request, exc: EditError) -> Response:
        return _error(request, 400, str(exc))

    @app.exception_handler(SohoaError)
    async def sohoa_error(request: Request, exc: SohoaError) -> Response:
        return _error(request, 500, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Yêu cầu không hợp lệ"
        if exc.status_code == 404:
            message = "Không tìm thấy trang"
        response = _error(request, exc.status_code, message)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response


def _add_root_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    @access_rule(Rule.NO_DOCUMENT_DATA)
    def home() -> Response:
        return RedirectResponse("/search", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    @access_rule(Rule.NO_DOCUMENT_DATA)
    def health() -> HTMLResponse:
        return HTMLResponse("ok")
