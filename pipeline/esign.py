"""The e-signature overlay of a gazette / e-office copy: found in the words read, kept apart from the page text.

A document signed or copied in an e-office system carries a small stamp of printed lines, often in a coloured
frame and often drawn over the national motto or the signature block: ``SAO Y`` / the copying body / ``Thời gian
ký: 19/10/2023 10:56:22 +07:00``, or ``Ký bởi: ...`` / ``Email: ...`` / ``Cơ quan: ...`` / ``Thời gian ký: ...``.
Its text is not the document's text (it would be read into the motto, the number or the signer's name), but it is
a fact worth keeping: the document was signed digitally.

Only stamp-shaped groups are taken, line by line, so that no page text goes with them (pieces of lines split at
column gaps, ``pipeline.reading_order.line_pieces``; "aligned" is within ``ALIGN_HEIGHTS`` word heights of the
same left edge, each at most ``LINE_GAP`` line heights below the previous one):

* a ``Ký bởi:`` piece and the aligned pieces under it that are stamp fields (``Email:``, ``Cơ quan:``, ``Tổ
  chức:``, ``Chức vụ:``, ``Thời gian ký:`` / a date and time), at most ``MAX_LINES`` in all;
* a short ``SAO Y`` piece, at most one aligned line under it (the copying body: letters only), and a signing
  time piece (``Thời gian ký: <date>``, or a time with the stamp's ``+07:00`` zone, even fused into the motto
  line) at most ``LINE_GAP`` line heights further down and overlapping the group horizontally: without that
  time the ``SAO Y`` is a paper copy's stamp and stays page text;
* a lone signing time line.

A piece that holds a secrecy or urgency word (``MẬT``, ``KHẨN``, ``HỎA TỐC``, folded), a number-symbol
(``15-NQ/TU``) or ``Số`` is never part of a stamp.
Pure: words in, words and the stamp's box and text out.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.reading_order import line_pieces
from pipeline.reread import word_height
from schemas.ocr import OcrPage, OcrWord
from schemas.text import fold

ALIGN_HEIGHTS = 2.0  # a stamp's lines start within this many word heights of each other...
LINE_GAP = 1.8  # ...each at most this many line heights below the previous one...
MAX_LINES = 6  # ...and a stamp has at most this many lines
_SIGNED = re.compile(r"^\W*ky boi\s*:")
_FIELD = re.compile(r"^\W*(email|e-mail|co quan|to chuc|chuc vu|ngay ky|don vi)\s*:")
_TIME = re.compile(
    r"^\W*thoi[\s-]*gian[\s-]*ky\s*:?\s*\d"  # Thời gian ký: 19/10/2023 10:56:22
    r"|\+\s?07:?00\b"  # ... 10:56:22 +07:00: the stamp's time zone, even fused into the motto line
    r"|^\W*\d{1,2}[./-]\d{1,2}[./-]\d{4}\s+\d{1,2}:\d{2}"  # a date and time alone
)
_COPY = re.compile(r"^\W*sao ?y\W*$")
_FORBIDDEN = re.compile(r"\b(mat|khan|hoa toc)\b|\bso\s*:?\s*\d|\d+\s*[-/]\s*[a-z]")  # marks, Số 15, 15-NQ/TU


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


def _fold(words: Sequence[OcrWord]) -> str:
    return fold(_text(words))


def _allowed(words: Sequence[OcrWord]) -> bool:
    """No secrecy or urgency word, no ``Số`` number, no number-symbol: such a piece is page text."""
    return _FORBIDDEN.search(_fold(words)) is None


def _is_field(words: Sequence[OcrWord]) -> bool:
    folded = _fold(words)
    return (_FIELD.match(folded) is not None or _TIME.search(folded) is not None) and _allowed(words)


class _Pieces:
    """The page's line pieces, top to bottom, with their boxes and the page's median word height."""

    def __init__(self, page: OcrPage) -> None:
        self.pieces = sorted(line_pieces(page), key=lambda words: _box(words)[1])
        self.boxes = [_box(words) for words in self.pieces]
        self.height = word_height(page)

    def below(self, index: int) -> list[int]:
        """Pieces whose top lies below piece ``index``'s bottom by at most ``LINE_GAP`` line heights."""
        last = self.boxes[index]
        return [i for i in range(index + 1, len(self.pieces))
                if 0 <= self.boxes[i][1] - last[3] + self.height * 0.5 <= LINE_GAP * self.height]

    def aligned_below(self, index: int) -> int | None:
        left = self.boxes[index][0]
        return next((i for i in self.below(index) if abs(self.boxes[i][0] - left) <= ALIGN_HEIGHTS * self.height),
                    None)


def _signed_group(pieces: _Pieces, start: int) -> list[int]:
    group = [start]
    while len(group) < MAX_LINES:
        following = pieces.aligned_below(group[-1])
        if following is None or not _is_field(pieces.pieces[following]):
            break
        group.append(following)
    return group


def _copy_group(pieces: _Pieces, start: int) -> list[tuple[OcrWord, ...]]:
    group = [start]
    organ = pieces.aligned_below(start)
    if organ is not None and _allowed(pieces.pieces[organ]) and all(
            any(ch.isalpha() for ch in w.text) and not any(ch.isdigit() for ch in w.text)
            for w in pieces.pieces[organ]) and not _TIME.search(_fold(pieces.pieces[organ])):
        group.append(organ)
    x0 = min(pieces.boxes[i][0] for i in group) - ALIGN_HEIGHTS * pieces.height
    x1 = max(pieces.boxes[i][2] for i in group) + ALIGN_HEIGHTS * pieces.height
    time = next((i for i in pieces.below(group[-1]) if pieces.boxes[i][0] < x1 and pieces.boxes[i][2] > x0
                 and _TIME.search(_fold(pieces.pieces[i])) and _allowed(pieces.pieces[i])), None)
    if time is None:
        return []
    left = min(pieces.boxes[i][0] for i in group) - pieces.height / 2
    fused = tuple(w for w in pieces.pieces[time] if w.box[0] >= left)  # the time fused into the motto line
    return [*(pieces.pieces[i] for i in group), fused or pieces.pieces[time]]


def _stamp(pieces: _Pieces) -> list[tuple[OcrWord, ...]]:
    """The lines of the first stamp, top to bottom (empty: no stamp)."""
    for i, words in enumerate(pieces.pieces):
        folded = _fold(words)
        if _SIGNED.match(folded) and _allowed(words):
            return [pieces.pieces[k] for k in _signed_group(pieces, i)]
        if _COPY.match(folded):
            group = _copy_group(pieces, i)
            if group:
                return group
        if _TIME.match(folded) and _allowed(words) and re.match(r"^\W*thoi", folded):
            return [words]
    return []


def find_esignature(page: OcrPage) -> tuple[OcrPage, ESignature | None]:
    """``page`` without the words of its e-signature stamp, and the stamp (``None``: no stamp found)."""
    if not page.words:
        return page, None
    pieces = _Pieces(page)
    lines = _stamp(pieces)
    if not lines:
        return page, None
    words = [w for line in lines for w in line]
    stamp = ESignature(box=_box(words), text="\n".join(_text(line) for line in lines))
    taken = {id(w) for w in words}
    kept = [w for w in page.words if id(w) not in taken]
    confidence = statistics.fmean(w.confidence for w in kept) if kept else 0.0
    return page.model_copy(update={"words": kept, "confidence": confidence}), stamp
