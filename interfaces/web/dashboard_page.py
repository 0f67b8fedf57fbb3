"""The operations dashboard (archivists, ``/dashboard``): pages digitised per night over the last 30 nights as an
inline SVG bar chart drawn here (no script, no charting library), pages/min of recent runs, the review backlog,
failures and held documents by reason, the last fixity audit and the last backup.

The figures are ``flows.status.archive_status`` for the logged-in user: computed only over the documents they may
see (the access rule is stated in ``flows.status``); reason codes are worded here, at the edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from flows.access import Rule, access_rule
from flows.status import ArchiveStatus, NightPages, ReasonCount
from interfaces.web.auth import Session, audit, current_session, require_role, state_of
from interfaces.web.render import render
from schemas.errors import NotFoundError
from schemas.reasons import code_label

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]

CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 160, 4  # the SVG's own units (it scales to its box)


def chart_bars(nights: list[NightPages]) -> list[dict[str, object]]:
    """One bar per night: its place and height in the SVG's units (a night with pages is at least 2 high) and the
    tooltip (the night's date and figures)."""
    top = max((n.pages for n in nights), default=0) or 1
    step = CHART_WIDTH / max(1, len(nights))
    bars = []
    for index, night in enumerate(nights):
        height = round(CHART_HEIGHT * night.pages / top, 1)
        if night.pages:
            height = max(height, 2.0)
        day = date.fromisoformat(night.night)
        bars.append({"x": round(index * step + BAR_GAP / 2, 1), "width": round(step - BAR_GAP, 1),
                     "y": round(CHART_HEIGHT - height, 1), "height": height, "pages": night.pages,
                     "title": f"Đêm {day:%d/%m/%Y}: {night.pages} trang, {night.documents} văn bản"})
    return bars


def reason_rows(counts: list[ReasonCount]) -> list[dict[str, object]]:
    return [{"label": code_label(c.code), "code": c.code, "documents": c.documents} for c in counts]


def _night_label(night: NightPages | None) -> str:
    return f"{date.fromisoformat(night.night):%d/%m}" if night is not None else ""


@router.get("/dashboard")
@access_rule(Rule.LISTING)
def dashboard_page(request: Request, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    from flows.status import archive_status

    state = state_of(request)
    audit(request, session.user.username, "dashboard.view")
    try:
        status = archive_status(state.settings, session.user.principal)
    except NotFoundError:  # no archive yet: an empty dashboard, not a "document not found"
        status = ArchiveStatus(generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
                               timezone=state.settings.timezone)
    nights = status.nights
    return render(request, "dashboard.html", {
        "s": status, "bars": chart_bars(nights), "chart_width": CHART_WIDTH, "chart_height": CHART_HEIGHT,
        "first_night": _night_label(nights[0] if nights else None),
        "last_night": _night_label(nights[-1] if nights else None),
        "top_pages": max((n.pages for n in nights), default=0),
        "review_rows": reason_rows(status.review_reasons), "failure_rows": reason_rows(status.failure_reasons),
        "held_rows": reason_rows(status.held_reasons),
    }, session=session)
