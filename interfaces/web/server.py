"""Entry point for the CLI: ``run_web`` (serve the app with uvicorn)."""

from __future__ import annotations

from interfaces.web.config import WebSettings
from schemas.settings import Settings


def run_web(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the web app until interrupted (one process; put a TLS proxy in front and set
    ``SOHOA_WEB_SECURE_COOKIES=true`` when it is reached over a network).

    uvicorn's own proxy-header handling stays off (it would believe ``X-Forwarded-For`` from 127.0.0.1, or from
    whatever ``FORWARDED_ALLOW_IPS`` says): the app reads those headers only from ``SOHOA_TRUSTED_PROXIES``
    (``create_app``)."""
    import uvicorn

    from interfaces.web.app import create_app

    app = create_app(settings, WebSettings())
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, server_header=False)
