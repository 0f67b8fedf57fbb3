"""Reading one document with the user's access grants (``flows.access_requests``), each use audited."""

from __future__ import annotations

from fastapi import Request

from flows.accounts import User
from flows.review import DocumentView
from interfaces.web.auth import audit, state_of
from interfaces.web.service import read_document


def readable(request: Request, doc_id: str, user: User, use: str) -> DocumentView:
    """The document for reading (page, page image, PDF/A): within the clearance, or through an active grant —
    then the use is recorded as ``access_grant.use`` (``use``: what was read) besides the route's own entry."""
    view = read_document(state_of(request), doc_id, user)
    if view.granted:
        audit(request, user.username, "access_grant.use", view.manifest.id, {"use": use})
    return view
