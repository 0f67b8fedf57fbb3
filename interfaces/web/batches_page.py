"""The batches page (archivists): register a scan folder as a batch, watch queued and running batches, retry or
cancel them. The same registry and functions as ``sohoa batch`` (``flows.batches``).

A batch folder is chosen from the sub-folders of the configured batch root (``SOHOA_WEB_BATCH_ROOT``); the form
sends a folder NAME, which must be one of those listed, so no path from the request reaches the filesystem.
Batches registered here run tonight or on a cron schedule, through ``sohoa serve``'s nightly deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from flows.access import Rule, access_rule
from interfaces.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from interfaces.web.render import render
from schemas.errors import SohoaError

router = APIRouter(prefix="/batches", include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
FormStr = Annotated[str, Form()]


def batch_folders(root: Path | None) -> list[str]:
    """Names of the folders an archivist may register (direct sub-folders of the batch root)."""
    if root is None or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _page(request: Request, session: Session, *, error: str = "", message: str = "", status: int = 200) -> Response:
    from flows.batches import STATE_LABELS, visible_batches

    state = state_of(request)
    records = visible_batches(state.settings, session.user.principal)
    return render(request, "batches.html", {
        "batches": records, "labels": STATE_LABELS, "folders": batch_folders(state.web.web_batch_root),
        "root": state.web.web_batch_root, "error": error, "message": message,
    }, session=session, status=status)


@router.get("")
@access_rule(Rule.LISTING)
def batches_page(request: Request, session: SessionDep, done: str = "") -> Response:
    require_role(session.user, "archivist")
    audit(request, session.user.username, "batch.list")
    messages = {"added": "Đã thêm lô: lô sẽ được số hóa trong khung giờ ban đêm",
                "retried": "Đã xếp lô chạy lại", "cancelled": "Đã hủy (hoặc yêu cầu dừng) lô"}
    return _page(request, session, message=messages.get(done, ""))


@router.post("")
@access_rule(Rule.LISTING)
def add(request: Request, session: SessionDep, csrf_token: FormStr = "", folder: FormStr = "",
        when: FormStr = "tonight", cron: FormStr = "", file_code: FormStr = "", title: FormStr = "",
        fonds: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.batches import add_batch

    state = state_of(request)
    root = state.web.web_batch_root
    if folder not in batch_folders(root):
        return _page(request, session, error="Chọn một thư mục lô trong danh sách", status=400)
    assert root is not None
    schedule = cron.strip() if when == "cron" else "tonight"
    try:
        record = add_batch(state.settings, root / folder, when=schedule, file_code=file_code.strip() or None,
                           fonds=fonds.strip() or None, title=title.strip() or None)
    except SohoaError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "batch.add", record.id, {"folder": folder, "when": schedule})
    return RedirectResponse("/batches?done=added", status_code=303)


@router.get("/{batch_id}")
@access_rule(Rule.LISTING)
def batch_page(request: Request, batch_id: str, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    from flows.batches import DOC_LABELS, STATE_LABELS, batch_details

    try:
        data = batch_details(state_of(request).settings, batch_id[:64], session.user.principal)
    except SohoaError as exc:
        audit(request, session.user.username, "batch.not_found", batch_id[:64])
        raise HTTPException(404) from exc
    audit(request, session.user.username, "batch.view", batch_id[:64])
    return render(request, "batch.html", {"b": data, "labels": STATE_LABELS, "doc_labels": DOC_LABELS,
                                          "live": data["state"] in ("queued", "running")}, session=session)


@router.post("/{batch_id}/retry")
@access_rule(Rule.LISTING)
def retry(request: Request, batch_id: str, session: SessionDep, csrf_token: FormStr = "",
          failed_only: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.batches import retry_batch

    try:
        retry_batch(state_of(request).settings, batch_id[:64], failed_only=failed_only == "on", when="tonight")
    except SohoaError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "batch.retry", batch_id[:64], {"failed_only": failed_only == "on"})
    return RedirectResponse("/batches?done=retried", status_code=303)


@router.post("/{batch_id}/cancel")
@access_rule(Rule.LISTING)
def cancel(request: Request, batch_id: str, session: SessionDep, csrf_token: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.batches import cancel_batch

    try:
        cancel_batch(state_of(request).settings, batch_id[:64])
    except SohoaError as exc:
        return _page(request, session, error=str(exc), status=400)
    audit(request, session.user.username, "batch.cancel", batch_id[:64])
    return RedirectResponse("/batches?done=cancelled", status_code=303)
