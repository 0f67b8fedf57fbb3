"""Rendering helpers shared by the page routers: templates with the user and CSRF token, URLs with parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from flows.accounts import ROLE_LABELS
from interfaces.web.auth import Session
from schemas.search import SECRECY_LEVELS

CLEARANCE_LABELS = {level: (name or "Thường") for name, level in SECRECY_LEVELS.items()}
STATUS_LABELS = {"needs_review": "Cần soát xét", "done": "Đã soát xét"}


def local_time_filter(timezone: str) -> object:
    """A Jinja filter: an ISO timestamp shown as ``dd/mm/yyyy hh:mm`` in the archive's time zone."""
    try:
        zone: ZoneInfo | None = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None

    def local_time(value: object) -> str:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        if zone is not None and moment.tzinfo is not None:
            moment = moment.astimezone(zone)
        return moment.strftime("%d/%m/%Y %H:%M")

    return local_time


def show_value(value: object) -> str:
    """A metadata or edit value as text: lists joined, nothing as a dash, statuses in words."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return STATUS_LABELS.get(str(value), str(value))


def render(request: Request, name: str, context: Mapping[str, object], *, session: Session | None = None,
           status: int = 200) -> Response:
    templates = request.app.state.templates
    assert isinstance(templates, Jinja2Templates)
    ctx = {"user": session.user if session else None, "csrf": session.csrf if session else "",
           "role_labels": ROLE_LABELS, "clearance_labels": CLEARANCE_LABELS, **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def url_with(path: str, params: Iterable[tuple[str, str]]) -> str:
    pairs = [(k, v) for k, v in params if v != ""]
    return path + ("?" + urlencode(pairs) if pairs else "")
