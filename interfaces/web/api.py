"""REST API under ``/api`` (token auth: ``Authorization: Bearer <token>``; a browser session also works).

The same service functions as the pages: the user's clearance is applied inside the search index, and a document
above it is "not found", exactly like a missing one.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from flows.access import Rule, access_rule
from flows.accounts import User
from interfaces.web.auth import api_user, audit, state_of
from interfaces.web.service import load_document, search
from schemas.document import SearchResult
from schemas.metadata import CONTRACT_KEYS
from schemas.reasons import Reason, describe_all
from schemas.search import SearchFilters

router = APIRouter(prefix="/api", tags=["api"])
UserDep = Annotated[User, Depends(api_user)]


class Me(BaseModel):
    username: str
    role: str
    clearance: int


class PageOut(BaseModel):
    number: int
    text: str
    confidence: float
    image: str  # URL of the page image (JPEG)


class CorrectionOut(BaseModel):
    field: str
    before: object
    after: object
    username: str
    at: str


class DocumentOut(BaseModel):
    id: str
    source: str
    batch: str
    status: str
    review_reasons: list[str]  # in Vietnamese (``review_reason_codes``: the same reasons as codes)
    review_reason_codes: list[Reason]
    metadata: dict[str, object]  # corrected values (the ``sohoa show --json`` metadata keys)
    pages: list[PageOut]
    provenance: dict[str, object]
    corrections: list[CorrectionOut]
    pdf: str | None  # URL of the PDF/A
    originals: list[str]  # URLs of the original files (archivists and admins)


@router.get("/me", response_model=Me, summary="The user of the token")
@access_rule(Rule.NO_DOCUMENT_DATA)
def me(user: UserDep) -> Me:
    return Me(username=user.username, role=user.role, clearance=user.clearance)


@router.get("/search", response_model=SearchResult, summary="Search the archive (accent-insensitive)")
@access_rule(Rule.SEARCH)
def api_search(
    request: Request,
    user: UserDep,
    q: str = "",
    type: Annotated[list[str], Query()] = [],  # noqa: B006
    organ: Annotated[list[str], Query()] = [],  # noqa: B006
    classification: Annotated[list[str], Query()] = [],  # noqa: B006
    batch: Annotated[list[str], Query()] = [],  # noqa: B006
    file_code: Annotated[list[str], Query()] = [],  # noqa: B006
    year_from: Annotated[int | None, Query(ge=1, le=9999, description="Năm ban hành từ (1–9999)")] = None,
    year_to: Annotated[int | None, Query(ge=1, le=9999, description="Năm ban hành đến (1–9999)")] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    sort: Literal["relevance", "date_desc", "date_asc"] = "relevance",
    limit: Annotated[int, Query(ge=0, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    facets: bool = False,
) -> SearchResult:
    filters = SearchFilters(type_name=type, organ_name=organ, classification=classification, batch=batch,
                            file_code=file_code, year_from=year_from, year_to=year_to, date_from=date_from,
                            date_to=date_to)
    audit(request, user.username, "search", "", {"query": q, "filters": filters.model_dump(mode="json",
                                                                                          exclude_defaults=True),
                                                 "sort": sort, "offset": offset, "api": True})
    return search(state_of(request), user, q, filters=filters, sort=sort, limit=limit, offset=offset, facets=facets)


@router.get("/documents/{doc_id}", response_model=DocumentOut, summary="One document, with corrections applied",
            responses={404: {"description": "No such document, or above the user's clearance"}})
@access_rule(Rule.DOCUMENT)
def api_document(request: Request, doc_id: str, user: UserDep) -> DocumentOut:
    from flows.files import shown_filing

    view = shown_filing(state_of(request).settings, user.principal, load_document(state_of(request), doc_id, user))
    doc = view.manifest
    audit(request, user.username, "document.view", doc.id, {"api": True})
    md = doc.metadata.model_dump(mode="json", exclude={"evidence"})
    metadata = {k: md.get(k) for k in CONTRACT_KEYS} | {k: v for k, v in md.items() if k not in CONTRACT_KEYS}
    base = f"/documents/{doc.id}"
    return DocumentOut(
        id=doc.id, source=doc.source, batch=doc.batch, status=doc.status,
        review_reasons=describe_all(doc.review_reasons), review_reason_codes=doc.review_reasons,
        metadata=metadata,
        pages=[PageOut(number=p.number, text=p.text, confidence=p.confidence, image=f"{base}/pages/{p.number}/image")
               for p in doc.pages],
        provenance=doc.provenance,
        corrections=[CorrectionOut(field=e.field, before=e.before, after=e.after, username=e.username, at=e.at)
                     for e in view.edits],
        pdf=f"{base}/pdf" if view.pdfa else None,
        originals=[f"{base}/original/{n}" for n in range(1, len(view.originals) + 1)]
        if user.has_role("archivist") else [],
    )
