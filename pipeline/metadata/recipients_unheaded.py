"""A ``Nơi nhận`` block whose heading was not read, found from its mandatory last item ``- Lưu: VT``.

NĐ 30/2020 (and HD 36-HD/VPTW for Party documents) ends every recipients list with the item ``Lưu: VT, ...`` (or
``Lưu: Văn thư``). When the ``Nơi nhận:`` heading itself is lost (read as debris under a seal or a fold, and
dropped), the block is still there: a column of short dash-led lines in the left half of the page, ending with
that item. This rule finds it from the bottom: the ``Lưu: VT`` line, then every dash-led line above it in the
left half, each within reach of the next, short enough not to be a body line (a body list spans the text width).
Its certainty is lower than under a heading (``UNHEADED_CERTAINTY``), so the field is shown for review. Pages
without word boxes are left alone: without positions a body list cannot be told from the block.
"""

from __future__ import annotations

import re

from schemas.text import fold

from .footer import BULLETS, NEXT_GAP, document_pages, normal_bullet, read_recipients
from .found import Found
from .layout import Column, Line, PageLines
from .repair import Lexicon

UNHEADED_CERTAINTY = 0.6  # below the review threshold once OCR confidence is counted: an archivist checks it
_LUU_RE = re.compile(r"^-\s*luu\s*[:;.,]?\s*(?:vt|v\.t|van\s*thu|vp\w*|van\s*phong)\b")
_MAX_RIGHT = 0.6  # a recipients line ends before this share of the page width
_MAX_ITEMS = 25


def _left(page: PageLines, ln: Line) -> bool:
    box = ln.box
    return ln.column != Column.RIGHT and box is not None and box[2] <= _MAX_RIGHT * page.width


def _is_luu(ln: Line) -> bool:
    return bool(_LUU_RE.match(fold(normal_bullet(ln.text.strip()))))


def _block(page: PageLines, last: Line) -> list[Line]:
    """The dash-led left-half lines above ``last`` (the ``Lưu`` item), top to bottom, ending with it."""
    left = [ln for ln in page.by_y() if _left(page, ln) and ln.yc < last.yc]
    block = [last]
    for ln in reversed(left):
        if block[0].yc - ln.yc > NEXT_GAP * page.line_height or len(block) >= _MAX_ITEMS:
            break
        if not normal_bullet(ln.text.strip()).startswith(BULLETS):
            break
        block.insert(0, ln)
    return block


def find_unheaded_recipients(pages: list[PageLines], lexicon: Lexicon) -> tuple[PageLines, Found[list[str]]] | None:
    """The recipients of a block without its heading, from the last document page backwards (None: no such)."""
    for page in reversed(document_pages(pages)):
        if not page.has_boxes:
            continue
        ends = [ln for ln in page.by_y() if _left(page, ln) and _is_luu(ln)]
        if not ends:
            continue
        block = _block(page, ends[-1])
        if len(block) < 2:
            return None  # a lone "Lưu" line is no list (and no evidence of one)
        found = read_recipients(block, [], [], lexicon, UNHEADED_CERTAINTY)
        return (page, found) if found else None
    return None
