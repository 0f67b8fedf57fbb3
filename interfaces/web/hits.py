"""Hits on the scan (document page): the query's words as boxes over the page image, and the previous/next hit.

The boxes are drawn server-side (``document.html``: an SVG layer over the image, each box a ``rect`` with
percentage coordinates: the CSP allows no inline styles), so they work without JavaScript, at any zoom and on a
phone. The words are folded as search folds them (``highlight.query_words``); the boxes come from the page's
stored hOCR, read through the document view the access policy gave (``flows.page_hits``).

"Kết quả trước" / "Kết quả tiếp" are plain links: to the previous/next hit on the page, then on to the last hit
of the previous page / the first hit of the next page that has hits; the link's fragment scrolls to the box.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flows.page_hits import HitBox, hit_counts, page_hit_boxes
from flows.review import DocumentView
from interfaces.web.highlight import query_words
from storage.objects import ObjectStore


@dataclass(frozen=True)
class Hits:
    """A query's hits over a document: the folded words looked for and the matched words (boxes) per page."""

    wanted: frozenset[str]
    counts: dict[int, int] = field(default_factory=dict)

    @property
    def first_page(self) -> int | None:
        return min((n for n, c in self.counts.items() if c > 0), default=None)


def find_hits(store: ObjectStore, view: DocumentView, query: str) -> Hits:
    query = query[:500]  # as the search page reads a query
    wanted = frozenset(query_words(query)) if query.strip() else frozenset()
    return Hits(wanted=wanted, counts=hit_counts(store, view, wanted))


@dataclass(frozen=True)
class HitStep:
    """Where a "previous/next hit" link leads: a page and the hit's number on it (1-based)."""

    page: int
    hit: int


def current_hit(counts: Mapping[int, int], page: int, asked: int | None) -> int | None:
    """The hit shown as current on ``page``: the one asked for (clamped), else the first; ``None`` without hits."""
    count = counts.get(page, 0)
    if count <= 0:
        return None
    return max(1, min(count, asked if asked is not None else 1))


def step_hits(counts: Mapping[int, int], page: int, current: int | None) -> tuple[HitStep | None, HitStep | None]:
    """The previous and next hit from hit ``current`` of ``page`` (``None``: the page has no hit), moving on to
    the previous/next page that has hits; ``None`` at either end of the document."""
    pages = sorted(n for n, c in counts.items() if c > 0)
    before: HitStep | None
    after: HitStep | None
    if current is not None and current > 1:
        before = HitStep(page, current - 1)
    else:
        earlier = [n for n in pages if n < page]
        before = HitStep(earlier[-1], counts[earlier[-1]]) if earlier else None
    if current is not None and current < counts.get(page, 0):
        after = HitStep(page, current + 1)
    else:
        later = [n for n in pages if n > page]
        after = HitStep(later[0], 1) if later else None
    return before, after


def hit_number(counts: Mapping[int, int], page: int, current: int | None) -> int | None:
    """The current hit's number in the whole document (the hits of earlier pages first)."""
    if current is None:
        return None
    return sum(c for n, c in counts.items() if n < page) + current


# (page, hit) -> the document page's URL showing that hit
LinkTo = Callable[[int, int], str]


def hits_context(store: ObjectStore, view: DocumentView, hits: Hits, page: int, asked: int | None,
                 link: LinkTo) -> dict[str, object]:
    """What ``document.html`` needs for the hits of ``page``: the boxes, the current hit, its number in the
    document, the previous/next hit links and each page's hit count (no query: nothing)."""
    if not hits.wanted:
        return {"hit_query": False, "hit_boxes": [], "hit_counts": {}}
    boxes: list[HitBox] = page_hit_boxes(store, view, page, hits.wanted)
    counts = {**hits.counts, page: len(boxes)}
    current = current_hit(counts, page, asked)
    before, after = step_hits(counts, page, current)
    here = len(boxes)  # the hits just before and after this page's (for stepping within the page in viewer.js)
    page_before, page_after = step_hits(counts, page, 1 if here else None)[0], step_hits(counts, page, here or None)[1]
    return {
        "hit_query": True, "hit_boxes": boxes, "hit_current": current, "hit_total": sum(counts.values()),
        "hit_number": hit_number(counts, page, current), "hit_counts": counts,
        "hit_before": sum(c for n, c in counts.items() if n < page),
        "hit_prev": link(before.page, before.hit) if before else "",
        "hit_next": link(after.page, after.hit) if after else "",
        "hit_prev_page": link(page_before.page, page_before.hit) if page_before else "",
        "hit_next_page": link(page_after.page, page_after.hit) if page_after else "",
    }
