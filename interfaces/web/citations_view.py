"""The document page's cross-references: citations in the page text as links to the cited documents, and the
"Được trích dẫn bởi" list (``flows.citations``, always with the reader's clearance).

A citation leads somewhere only when the cited document is one the reader may see; otherwise — no such document,
or one above the reader's clearance — it is plain text, rendered by the same code as the text around it, so the
page is byte for byte the same in both cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.accounts import User
from flows.citations import Target, cited_by, find_citations, resolve, segments
from interfaces.web.highlight import Segment, mark_words
from interfaces.web.render import url_with
from interfaces.web.service import WebState
from schemas.document import DocumentManifest, PageRecord


@dataclass(frozen=True)
class Piece:
    """A run of page text (its words the query looks for marked) and, for a citation that leads somewhere, the
    link (``kind``: ``document`` or ``search``)."""

    parts: list[Segment]
    href: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Citer:
    href: str
    label: str
    date: str
    subject: str


def _href(target: Target) -> tuple[str, str]:
    if target.doc_id is not None:
        return f"/documents/{target.doc_id}", "document"
    return url_with("/search", [("q", target.query or ""), ("year", str(target.year or ""))]), "search"


def linked_text(state: WebState, user: User, page: PageRecord | None, query: str) -> list[Piece]:
    """The page's text as pieces: plain runs (with the query's words marked) and linked citations."""
    if page is None or not page.text:
        return []
    citations = find_citations(page.text)
    targets = resolve(state.settings, citations, user.clearance)
    out: list[Piece] = []
    plain = ""
    for text, citation in segments(page.text, [c for c in citations if c in targets]):
        if citation is None:
            plain += text
            continue
        if plain:
            out.append(Piece(mark_words(plain, query)))
            plain = ""
        href, kind = _href(targets[citation])
        out.append(Piece(mark_words(text, query), href, kind))
    if plain:
        out.append(Piece(mark_words(plain, query)))
    return out


def _label(doc: DocumentManifest) -> str:
    md = doc.metadata
    code = ""
    if md.code_number and md.code_notation:
        code = f"số {md.code_number}{'-' if '/' in md.code_notation else '/'}{md.code_notation}"
    return " ".join(p for p in (md.type_name or "Văn bản", code) if p)


def _date(iso: str | None) -> str:
    if not iso or len(iso) != 10:
        return ""
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"


def citers(state: WebState, user: User, manifest: DocumentManifest) -> list[Citer]:
    """The documents the reader may see that cite ``manifest``."""
    return [Citer(href=f"/documents/{doc.id}", label=_label(doc), date=_date(doc.metadata.issued_date),
                  subject=doc.metadata.subject or "")
            for doc in cited_by(state.settings, state.store, manifest, user.principal)]


def citation_context(state: WebState, user: User, manifest: DocumentManifest, page: PageRecord | None,
                     query: str) -> dict[str, object]:
    """What ``document.html`` shows of cross-references: ``page_text`` and ``cited_by``."""
    return {"page_text": linked_text(state, user, page, query), "cited_by": citers(state, user, manifest),
            "has_code": bool(manifest.metadata.code_number and manifest.metadata.code_notation)}
