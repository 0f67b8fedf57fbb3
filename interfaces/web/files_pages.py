"""Pages of the archive as it is filed: phông (``/phong``, ``/phong/{fonds}``), a hồ sơ (``/ho-so/{file_code}``)
with its mục lục as XLSX, and, for archivists, creating and editing a hồ sơ record and filing documents in or out.

Everything is what the user may see (``flows.files``: documents above their clearance are left out of lists,
counts and year ranges; a hồ sơ or phông known only from such documents is the same 404 as an unknown one).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from flows.access import Rule, access_rule
from flows.corrections import EditError
from flows.review import Reviewer
from interfaces.web.auth import Session, audit, check_csrf, current_session, require_role, state_of
from interfaces.web.render import STATUS_LABELS, render

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
FormStr = Annotated[str, Form()]
RECORD_PARAMS = ("title", "fonds", "start_date", "end_date", "maintenance", "language", "note")


def file_url(code: str) -> str:
    return f"/ho-so/{quote(code, safe='')}"


def fonds_url(key: str) -> str:
    return f"/phong/{quote(key, safe='')}"


def _context(**values: object) -> dict[str, object]:
    return {"file_url": file_url, "fonds_url": fonds_url, "status_labels": STATUS_LABELS, **values}


@router.get("/phong")
@access_rule(Rule.LISTING)
def fonds_list(request: Request, session: SessionDep) -> Response:
    from flows.files import archive_fonds

    audit(request, session.user.username, "fonds.list")
    fonds = archive_fonds(state_of(request).settings, session.user.principal)
    return render(request, "fonds_list.html", _context(fonds=fonds), session=session)


@router.get("/phong/{key:path}")
@access_rule(Rule.LISTING)
def fonds_page(request: Request, key: str, session: SessionDep) -> Response:
    from flows.files import fonds_view

    fonds = fonds_view(state_of(request).settings, session.user.principal, key[:300])  # hidden == missing: 404
    audit(request, session.user.username, "fonds.view", key[:300])
    return render(request, "fonds.html", _context(fonds=fonds), session=session)


def _file_page(request: Request, session: Session, code: str, *, error: str = "", message: str = "",
               status: int = 200) -> Response:
    from flows.file_records import MAINTENANCE
    from flows.files import file_view

    view = file_view(state_of(request).settings, session.user.principal, code[:100])  # hidden == missing: 404
    return render(request, "file.html", _context(f=view, error=error, message=message, maintenance=MAINTENANCE),
                  session=session, status=status)


@router.get("/ho-so/{code}")
@access_rule(Rule.LISTING)
def file_page(request: Request, code: str, session: SessionDep, done: str = "") -> Response:
    messages = {"saved": "Đã lưu hồ sơ", "filed": "Đã đưa văn bản vào hồ sơ", "unfiled": "Đã đưa văn bản ra khỏi hồ sơ"}
    response = _file_page(request, session, code, message=messages.get(done, ""))
    audit(request, session.user.username, "file.view", code[:100])
    return response


@router.get("/ho-so/{code}/muc-luc.xlsx")
@access_rule(Rule.LISTING)
def muc_luc(request: Request, code: str, session: SessionDep) -> Response:
    from flows.muc_luc import muc_luc_bytes

    view, data = muc_luc_bytes(state_of(request).settings, code[:100], principal=session.user.principal,
                               where=f"web:{session.user.username}")
    audit(request, session.user.username, "export.muc_luc", view.file_code, {"documents": len(view.documents)})
    name = "muc-luc-" + "".join(c if c.isascii() and (c.isalnum() or c in ".-_") else "_" for c in view.file_code)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"',
                             "Cache-Control": "private, no-store"})


# --- archivists: records and filing ----------------------------------------------------------------------------
def _edit_page(request: Request, session: Session, values: dict[str, str], *, create: bool, error: str = "",
               status: int = 200) -> Response:
    from flows.file_records import MAINTENANCE

    return render(request, "file_edit.html", _context(values=values, create=create, error=error,
                                                       maintenance=MAINTENANCE), session=session, status=status)


@router.get("/ho-so-moi")
@access_rule(Rule.NO_DOCUMENT_DATA)
def new_file_form(request: Request, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    return _edit_page(request, session, {"language": "Tiếng Việt"}, create=True)


@router.get("/ho-so/{code}/sua")
@access_rule(Rule.LISTING)
def edit_file_form(request: Request, code: str, session: SessionDep) -> Response:
    require_role(session.user, "archivist")
    from flows.files import file_view

    view = file_view(state_of(request).settings, session.user.principal, code[:100])
    record = view.record.model_dump() if view.record else {"title": view.title or "", "fonds": view.fonds or ""}
    values = {k: str(v) for k, v in record.items() if v is not None}
    return _edit_page(request, session, {**values, "file_code": view.file_code}, create=False)


@router.post("/ho-so-moi")
@access_rule(Rule.NO_DOCUMENT_DATA)
def create_file(request: Request, session: SessionDep, csrf_token: FormStr = "", file_code: FormStr = "",
                title: FormStr = "", fonds: FormStr = "", start_date: FormStr = "", end_date: FormStr = "",
                maintenance: FormStr = "", language: FormStr = "", note: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    return _save(request, session, file_code, dict(zip(RECORD_PARAMS, (title, fonds, start_date, end_date,
                                                                       maintenance, language, note), strict=True)),
                 create=True)


@router.post("/ho-so/{code}/sua")
@access_rule(Rule.LISTING)
def save_file(request: Request, code: str, session: SessionDep, csrf_token: FormStr = "", title: FormStr = "",
              fonds: FormStr = "", start_date: FormStr = "", end_date: FormStr = "", maintenance: FormStr = "",
              language: FormStr = "", note: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.files import file_view

    view = file_view(state_of(request).settings, session.user.principal, code[:100])  # must exist for the user
    return _save(request, session, view.file_code, dict(zip(RECORD_PARAMS, (title, fonds, start_date, end_date,
                                                                            maintenance, language, note),
                                                            strict=True)), create=False)


def _save(request: Request, session: Session, code: str, values: dict[str, str], *, create: bool) -> Response:
    from flows.file_records import save_record

    try:
        record = save_record(state_of(request).settings, session.user.username, code, values, create=create)
    except EditError as exc:
        return _edit_page(request, session, {**values, "file_code": code}, create=create, error=str(exc),
                          status=400)
    audit(request, session.user.username, "file.create" if create else "file.edit", record.file_code,
          {k: v for k, v in record.model_dump().items() if k in RECORD_PARAMS})
    return RedirectResponse(file_url(record.file_code) + "?done=saved", status_code=303)


def _reviewer(request: Request, session: Session) -> Reviewer:
    state = state_of(request)
    return Reviewer(settings=state.settings, store=state.store, db=state.db, audit=state.audit, user=session.user)


@router.post("/ho-so/{code}/van-ban")
@access_rule(Rule.DOCUMENT)
def file_in(request: Request, code: str, session: SessionDep, csrf_token: FormStr = "", doc_id: FormStr = "",
            sequence: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.file_records import file_document

    number = sequence.strip()
    if number and not (number.isascii() and number.isdigit() and 0 < int(number) <= 1_000_000):
        return _file_page(request, session, code, error="Số thứ tự: cần một số nguyên dương", status=400)
    try:  # a hidden or missing document: NotFoundError, the app's 404 (the same for both)
        view = file_document(_reviewer(request, session), doc_id.strip()[:64], code[:100],
                             int(number) if number else None)
    except EditError as exc:
        return _file_page(request, session, code, error=str(exc), status=400)
    audit(request, session.user.username, "file.add_document", doc_id.strip()[:64], {"file_code": view.file_code})
    return RedirectResponse(file_url(view.file_code) + "?done=filed", status_code=303)


@router.post("/ho-so/{code}/van-ban/{doc_id}/bo")
@access_rule(Rule.DOCUMENT)
def file_out(request: Request, code: str, doc_id: str, session: SessionDep, csrf_token: FormStr = "") -> Response:
    require_role(session.user, "archivist")
    check_csrf(session.csrf, csrf_token)
    from flows.file_records import unfile_document

    try:
        unfile_document(_reviewer(request, session), doc_id[:64], code[:100])
    except EditError as exc:
        return _file_page(request, session, code, error=str(exc), status=400)
    audit(request, session.user.username, "file.remove_document", doc_id[:64], {"file_code": code[:100]})
    from flows.files import file_view
    from schemas.errors import NotFoundError

    try:  # the hồ sơ may be gone for this user: its last visible document left and it has no record
        file_view(state_of(request).settings, session.user.principal, code[:100])
    except NotFoundError:
        return RedirectResponse("/phong", status_code=303)
    return RedirectResponse(file_url(code[:100]) + "?done=unfiled", status_code=303)
