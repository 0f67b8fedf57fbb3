"""The e-signature overlay of a gazette / e-office copy: found in the words read, kept apart from the page text.

A document signed or copied in an e-office system carries a small stamp of printed lines, often in a coloured
frame and often drawn over the national motto or the signature block: ``SAO Y`` / the copying body / ``Thời gian
ký: 19/10/2023 10:56:22 +07:00``, or ``Ký bởi: ...`` / ``Email: ...`` / ``Cơ quan: ...`` / ``Thời gian ký: ...``.
Its text is not the document's text (it would be read into the motto, the number or the signer's name), but it is
a fact worth keeping: the document was signed digitally.

A stamp starts at a piece of a line (split at column gaps, ``pipeline.reading_order.line_pieces``) whose folded
text begins with one of the fixed phrases of such stamps (``Ký bởi:``, ``Người ký:``, ``Thời gian ký:`` and a
date, or a short ``SAO Y`` line), and runs over the pieces just below it that start at the same left edge
(within ``ALIGN_HEIGHTS`` word heights, each at most ``LINE_GAP`` line heights below the previous one,
``MAX_LINES`` in all), or over those just above it when it is the ``Thời gian ký`` line (always the last).
Pure: words in, words and the stamp's box and text out.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.reading_order import line_pieces
from schemas.ocr import OcrPage, OcrWord
from schemas.text import fold

ALIGN_HEIGHTS = 2.0  # a stamp's lines start within this many word heights of each other...
LINE_GAP = 1.8  # ...each at most this many line heights below the previous one...
MAX_LINES = 6  # ...and a stamp has at most this many lines
_START = re.compile(r"^\W*(ky boi\s*:|nguoi ky\s*:|sao ?y\b|thoi[\s-]*gian[\s-]*ky\s*:?\s*\d)")
_LAST = re.compile(r"^\W*thoi[\s-]*gian")


@dataclass(frozen=True)
class ESignature:
    """The stamp's box (x0, y0, x1, y1, page pixels) and its text, one line per stamp line."""

    box: tuple[int, int, int, int]
    text: str

    def as_step(self) -> dict[str, object]:
        return {"box": list(self.box), "text": self.text}


def _box(words: Sequence[OcrWord]) -> tuple[int, int, int, int]:
    return (min(w.box[0] for w in words), min(w.box[1] for w in words),
            max(w.box[2] for w in words), max(w.box[3] for w in words))


def _text(words: Sequence[OcrWord]) -> str:
    return " ".join(w.text for w in words)


def _is_start(words: Sequence[OcrWord]) -> bool:
    folded = fold(_text(words))
    return _START.match(folded) is not None and not (folded.startswith("sao") and len(words) > 4)


def _grow(start: int, pieces: list[tuple[OcrWord, ...]], height: float, step: int) -> list[int]:
    """Indexes of the pieces aligned under (``step`` 1) or over (``step`` -1) piece ``start``, nearest first."""
    order = sorted(range(len(pieces)), key=lambda i: _box(pieces[i])[1])
    pos = order.index(start)
    found: list[int] = []
    last = _box(pieces[start])
    for i in order[pos + 1 :] if step > 0 else order[:pos][::-1]:
        box = _box(pieces[i])
        gap = box[1] - last[3] if step > 0 else last[1] - box[3]
        if gap > LINE_GAP * height or len(found) + 1 >= MAX_LINES:
            break
        if abs(box[0] - last[0]) <= ALIGN_HEIGHTS * height:
            found.append(i)
            last = box
    return found


def find_esignature(page: OcrPage) -> tuple[OcrPage, ESignature | None]:
    """``page`` without the words of its e-signature stamp, and the stamp (``None``: no stamp found)."""
    pieces = line_pieces(page)
    starts = [i for i, words in enumerate(pieces) if _is_start(words)]
    if not starts:
        return page, None
    heights = [w.box[3] - w.box[1] for w in page.words if len(w.text) > 1] or [1]
    height = float(statistics.median(heights))
    first = starts[0]
    below = [] if _LAST.match(fold(_text(pieces[first]))) else _grow(first, pieces, height, 1)
    above = _grow(first, pieces, height, -1) if _LAST.match(fold(_text(pieces[first]))) else []
    chosen = sorted([*above, first, *below], key=lambda i: _box(pieces[i])[1])
    words = [w for i in chosen for w in pieces[i]]
    stamp = ESignature(box=_box(words), text="\n".join(_text(pieces[i]) for i in chosen))
    taken = {id(w) for w in words}
    kept = [w for w in page.words if id(w) not in taken]
    confidence = statistics.fmean(w.confidence for w in kept) if kept else 0.0
    return page.model_copy(update={"words": kept, "confidence": confidence}), stamp
