"""The web's side of reviewing: hands the request state's archive, store, accounts and audit trail to the use
cases in ``flows.review`` (load, correct, the review queue, re-applying corrections at start)."""

from __future__ import annotations

from collections.abc import Mapping

from flows import review
from flows.accounts import User
from flows.review import DocumentView, QueueItem, last_version
from interfaces.web.service import WebState
from schemas.document import DocumentManifest


def reviewer_of(state: WebState, user: User) -> review.Reviewer:
    return review.Reviewer(settings=state.settings, store=state.store, db=state.db, audit=state.audit, user=user)


def reindex_document(state: WebState, manifest: DocumentManifest, manifest_key: str, *, version: int = 0) -> None:
    review.reindex_document(state.settings, manifest, manifest_key, version=version)


def apply_changes(state: WebState, user: User, doc_id: str, submitted: Mapping[str, object], *,
                  version: int | None = None) -> list[str]:
    return review.apply_changes(reviewer_of(state, user), doc_id, submitted, version=version)


def review_queue(state: WebState, user: User) -> list[QueueItem]:
    return review.review_queue(state.settings, state.store, user.principal)


def resync(state: WebState) -> int:
    return review.resync(state.settings, state.store)


__all__ = ["DocumentView", "QueueItem", "apply_changes", "last_version", "reindex_document", "resync", "review_queue"]
