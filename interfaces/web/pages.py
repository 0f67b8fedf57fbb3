"""Pages for every user: login, search, a document (page images, OCR text, metadata, provenance), downloads."""

from __future__ import annotations

import json
import mimetypes
from pathlib import PurePosixPath
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.datastructures import QueryParams
from starlette.responses import Response

from flows.access import Rule, access_rule
from flows.accounts import LoginThrottled, User
from flows.corrections import EDITABLE_METADATA, current_value
from flows.files import filing_of, shown_filing, shown_pdf_name
from interfaces.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    audit,
    check_csrf,
    client_ip,
    current_session,
    new_login_token,
    reader,
    require_role,
    safe_next,
    set_cookie,
    state_of,
)
from interfaces.web.citations_view import citation_context
from interfaces.web.files_pages import file_url, fonds_url
from interfaces.web.grants import readable
from interfaces.web.highlight import has_match, mark_words, segments
from interfaces.web.hits import find_hits, hits_context
from interfaces.web.render import render, url_with
from interfaces.web.service import load_document, local_file, page_image, search
from schemas.search import FACET_FIELDS, SearchFilters, Sort

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(current_session)]
ReaderDep = Annotated[User, Depends(reader)]

FACET_LABELS = {"type_name": "Loại văn bản", "year": "Năm", "organ_name": "Cơ quan ban hành",
                "classification": "Độ mật", "batch": "Lô số hóa", "file_code": "Hồ sơ"}
FACET_PARAMS = {"type_name": "type", "year": "year", "organ_name": "organ", "classification": "classification",
                "batch": "batch", "file_code": "file_code"}
SORTS = {"relevance": "Phù hợp nhất", "date_desc": "Mới nhất", "date_asc": "Cũ nhất"}
LIST_PARAMS = ("type", "organ", "classification", "batch", "file_code")


# --- login ---------------------------------------------------------------------------------------------------
def _login_page(request: Request, next_url: str, *, error: str = "", status: int = 200, username: str = "") -> Response:
    token = new_login_token()
    response = render(request, "login.html", {"next": safe_next(next_url), "login_token": token, "error": error,
                                              "username": username}, status=status)
    set_cookie(response, state_of(request), LOGIN_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
@access_rule(Rule.NO_DOCUMENT_DATA)
def login_form(request: Request, next: str = "/search") -> Response:
    return _login_page(request, next)


@router.post("/login")
@access_rule(Rule.NO_DOCUMENT_DATA)
def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/search") -> Response:
    state = state_of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected:
        return _login_page(request, next, error="Phiên đăng nhập đã hết hạn, vui lòng thử lại", status=403)
    check_csrf(expected, csrf_token)
    try:
        user = state.accounts.authenticate(username, password, client_ip(request))
    except LoginThrottled as exc:
        audit(request, username[:100], "login.throttled")
        minutes = max(1, (exc.retry_after_s + 59) // 60)
        response = _login_page(request, next, status=429, username=username,
                               error=f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút.")
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if user is None:
        audit(request, username[:100], "login.failed")
        return _login_page(request, next, error="Tên đăng nhập hoặc mật khẩu không đúng", status=401,
                           username=username)
    token, _ = state.accounts.create_session(user)
    audit(request, user.username, "login")
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(response, state, SESSION_COOKIE, token)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
@access_rule(Rule.NO_DOCUMENT_DATA)
def logout(request: Request, session: SessionDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(session.csrf, csrf_token)
    state_of(request).accounts.end_session(session.token)
    audit(request, session.user.username, "logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- search --------------------------------------------------------------------------------------------------
def filters_from(params: QueryParams) -> SearchFilters:
    year = params.get("year", "")
    year_value = int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None  # not "²²²²"
    return SearchFilters(
        type_name=params.getlist("type")[:20], organ_name=params.getlist("organ")[:20],
        classification=params.getlist("classification")[:20], batch=params.getlist("batch")[:20],
        file_code=params.getlist("file_code")[:20], year_from=year_value, year_to=year_value,
    )


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(text or default)))
    except ValueError:
        return default


@router.get("/search")
@access_rule(Rule.SEARCH)
def search_page(request: Request, session: SessionDep) -> Response:
    state, params = state_of(request), request.query_params
    query = params.get("q", "")[:500]
    sort = cast(Sort, params.get("sort") if params.get("sort") in SORTS else "relevance")
    size = state.web.web_page_size
    page = _int(params.get("page"), 1, 1, 100_000 // size)
    filters = filters_from(params)
    audit(request, session.user.username, "search", "", {
        "query": query, "filters": filters.model_dump(mode="json", exclude_defaults=True), "sort": sort, "page": page})
    result = search(state, session.user, query, filters=filters, sort=sort, limit=size, offset=(page - 1) * size,
                    facets=True)
    base = [(k, v) for k, v in params.multi_items() if k != "page"]
    facets = []
    for name in FACET_FIELDS:
        param = FACET_PARAMS[name]
        chosen = params.getlist(param)
        values = []
        for facet in result.facets.get(name, []):
            active = facet.value in chosen
            if active:
                link = [(k, v) for k, v in base if not (k == param and v == facet.value)]
            elif param == "year":
                link = [*[(k, v) for k, v in base if k != "year"], ("year", facet.value)]
            else:
                link = [*base, (param, facet.value)]
            values.append({"value": facet.value, "count": facet.count, "active": active,
                           "url": url_with("/search", link)})
        if values:
            facets.append({"label": FACET_LABELS[name], "values": values})
    chips = [{"label": FACET_LABELS[n], "value": v,
              "url": url_with("/search", [(k, x) for k, x in base if not (k == FACET_PARAMS[n] and x == v)])}
             for n in FACET_FIELDS for v in params.getlist(FACET_PARAMS[n])]
    hits = [{"hit": h, "snippet": segments(h.snippet, h.highlights),
             "subject": mark_words(str(h.metadata.get("subject") or ""), query),
             "url": url_with(f"/documents/{h.id}", [("q", query)])} for h in result.hits]
    pages = max(1, min(-(-result.total // size), 100_000 // size))
    nav = {n: url_with("/search", [*base, ("page", str(n))]) for n in range(max(1, page - 4), min(pages, page + 4) + 1)}
    return render(request, "search.html", {
        "q": query, "sort": sort, "sorts": {k: (label, url_with("/search", [*[(a, b) for a, b in base if a != "sort"],
                                                                            ("sort", k)]))
                                            for k, label in SORTS.items()},
        "result": result, "hits": hits, "facets": facets, "chips": chips, "page": page, "pages": pages, "nav": nav,
        "offset": (page - 1) * size, "hidden": [(k, v) for k, v in base if k not in ("q", "sort")],
    }, session=session)


# --- documents -----------------------------------------------------------------------------------------------
def metadata_rows(view_manifest: object, machine: object) -> list[dict[str, object]]:
    rows = []
    for key, label in EDITABLE_METADATA.items():
        field = f"metadata.{key}"
        value, original = current_value(view_manifest, field), current_value(machine, field)  # type: ignore[arg-type]
        rows.append({"key": key, "label": label, "value": value, "machine": original, "corrected": value != original})
    return rows


@router.get("/documents/{doc_id}")
@access_rule(Rule.DOCUMENT)
def document_page(request: Request, doc_id: str, session: SessionDep, q: str = "", page: int | None = None,
                  hit: int | None = None) -> Response:
    state = state_of(request)
    q = q[:500]  # as the search page reads a query: not copied whole into every link and text piece
    view = readable(request, doc_id, session.user, "page")  # the policy first: the hOCR is read only through this view
    view = shown_filing(state.settings, session.user.principal, view)  # its số thứ tự among what the user sees
    manifest = view.manifest
    count = len(manifest.pages)
    hits = find_hits(state.store, view, q)
    if page is None:  # the page with the first hit (boxes from the hOCR; else a match in the text) opens first
        page = hits.first_page or next((p.number for p in manifest.pages if q and has_match(p.text, q)), 1)
    page = max(1, min(count, page)) if count else 1
    current = next((p for p in manifest.pages if p.number == page), None)
    audit(request, session.user.username, "document.view", manifest.id, {"page": page, "query": q})

    def link(n: int) -> str:
        return url_with(f"/documents/{manifest.id}", [("q", q), ("page", str(n))])

    prov = manifest.provenance
    ocr = prov.get("ocr") if isinstance(prov.get("ocr"), dict) else {}
    assert isinstance(ocr, dict)
    return render(request, "document.html", citation_context(state_of(request), session.user, manifest, current, q) | {
        "view": view, "doc": manifest, "q": q, "page": page, "count": count, "page_record": current,
        "page_links": {n: link(n) for n in range(1, count + 1)},
        "prev": link(page - 1) if page > 1 else "", "next": link(page + 1) if page < count else "",
        "rows": metadata_rows(manifest, view.machine),
        "pdf_name": shown_pdf_name(session.user.principal, view),
        "originals": [PurePosixPath(f.key).name for f in view.originals],
        "ocr": ocr, "provenance_json": json.dumps(prov, ensure_ascii=False, indent=1),
        "back": url_with("/search", [("q", q)]),
        **hits_context(state.store, view, hits, page, hit, lambda n, h: url_with(
            f"/documents/{manifest.id}", [("q", q), ("page", str(n)), ("hit", str(h))]) + f"#hit-{h}"),
        "filing": filing_of(state_of(request).settings, manifest), "file_url": file_url, "fonds_url": fonds_url,
    }, session=session)


@router.get("/documents/{doc_id}/pages/{number}/image")
@access_rule(Rule.DOCUMENT)
def page_image_route(request: Request, doc_id: str, number: int, user: ReaderDep) -> Response:
    state = state_of(request)
    view = readable(request, doc_id, user, "image")
    image = page_image(state, view, number)
    audit(request, user.username, "page.image", view.manifest.id, {"page": number})
    return Response(image, media_type="image/jpeg",  # never kept by the browser: it outlives the session
                    headers={"Cache-Control": "private, no-store"})


@router.get("/documents/{doc_id}/pdf")
@access_rule(Rule.DOCUMENT)
def download_pdf(request: Request, doc_id: str, user: ReaderDep) -> Response:
    state = state_of(request)
    view = readable(request, doc_id, user, "pdf")
    if view.pdfa is None:
        raise HTTPException(404)
    path = local_file(state, doc_id, view.pdfa)
    name = shown_pdf_name(user.principal, shown_filing(state.settings, user.principal, view))
    audit(request, user.username, "download.pdf", view.manifest.id, {"file": name})
    return FileResponse(path, media_type="application/pdf", filename=name,
                        headers={"Cache-Control": "private, no-store"})


@router.get("/documents/{doc_id}/original/{number}")
@access_rule(Rule.DOCUMENT)
def download_original(request: Request, doc_id: str, number: int, user: ReaderDep) -> Response:
    state = state_of(request)
    view = load_document(state, doc_id, user)
    require_role(user, "archivist")
    originals = view.originals
    if not 1 <= number <= len(originals):
        raise HTTPException(404)
    stored = originals[number - 1]
    name = PurePosixPath(stored.key).name
    audit(request, user.username, "download.original", view.manifest.id, {"file": name})
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(local_file(state, doc_id, stored), media_type=media, filename=name,
                        headers={"Cache-Control": "private, no-store"})
