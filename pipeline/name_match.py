"""Words a black seal's ink is fused with, read by elimination: the known spelling whose print the ink covers.

Where the bottom of a seal lies over the signer's name, the seal's letters touch the name's letters and no
cleaning separates them; tesseract reads ``'WeBäủa`` for ``Hoàng``. But the page's ink there is the name's ink
*plus* the seal's: a candidate spelling printed in the document's typeface at the line's size is wholly covered
by that ink when it is the right one, and a wrong one leaves some of its strokes on white paper. So each
candidate (the family names for a name's first word, the common given names for the others) is printed with the
name font (Liberation Serif, metric-compatible with the Times New Roman that Hướng dẫn 36 and Nghị định 30
prescribe), slid over the word's place, and scored:

- recall: share of the printed word's ink that falls on page ink (grown by ``INK_TOLERANCE_PX``);
- precision: share of the page ink in the printed word's box that the printed word explains.

Among the candidates with a recall of at least ``MIN_RECALL``, the best F-measure (recall weighted
``RECALL_WEIGHT`` times) wins when no candidate spelled differently (folded) comes within ``MIN_MARGIN``;
otherwise the word stays as read. The size comes from
a word of the same line that was read confidently, printed and measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PilImage
from PIL import ImageDraw, ImageFont

from schemas.text import fold

Mask = NDArray[np.bool_]

INK_TOLERANCE_PX = 1  # page ink grown by this much before asking whether it covers a printed candidate
MIN_RECALL = 0.9  # share of a candidate's printed ink that must fall on page ink
RECALL_WEIGHT = 3.0  # the score is the F-measure with this beta
MIN_MARGIN = 0.02  # score lead needed over the best candidate spelled differently
SLACK_PX = 6  # how far a candidate may stand outside the word's box, left and right
SIZE_RANGE = (0.6, 1.6)  # font sizes tried when fitting a reference word, as shares of its box height
MIN_SIZE_PX = 8


@dataclass(frozen=True)
class WordMatch:
    """The chosen spelling and how well its print fits the page's ink."""

    text: str
    recall: float
    precision: float
    box: tuple[int, int, int, int]  # where it fits best, in the ink image's pixels

    @property
    def score(self) -> float:
        return _weighted(self.recall, self.precision)


def _weighted(recall: float, precision: float) -> float:
    """F-measure weighing recall ``RECALL_WEIGHT`` times as much as precision: a print left partly on white paper
    is wrong, while unexplained ink may be the seal's."""
    b2 = RECALL_WEIGHT**2
    return (1 + b2) * recall * precision / (b2 * precision + recall) if recall + precision > 0 else 0.0


@lru_cache(maxsize=16)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=4096)
def printed(text: str, font: Path, size: int) -> Mask:
    """``text`` printed black on white with ``font`` at ``size`` pixels, cropped to its ink."""
    face = _font(font, size)
    left, top, right, bottom = (round(v) for v in face.getbbox(text))
    canvas = PilImage.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=face, fill=255)
    ink = np.asarray(canvas) > 127
    ys, xs = np.nonzero(ink)
    if not len(xs):
        return np.zeros((1, 1), bool)
    out = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    out.flags.writeable = False
    return out


def fit_size(text: str, ink: Mask, room: tuple[int, int], height: int, font: Path) -> int | None:
    """The font size (pixels) at which ``text``, a word of the line read confidently, best fits its own ink
    (``room`` its x range on the band, ``height`` its box height)."""
    best: tuple[float, int] | None = None
    for size in range(max(MIN_SIZE_PX, round(SIZE_RANGE[0] * height)), round(SIZE_RANGE[1] * height) + 1):
        fit = _best_fit(ink, room, text, font, size)
        if fit is not None and (best is None or fit.score > best[0]):
            best = (fit.score, size)
    return best[1] if best else None


def _window(ink: Mask, room: tuple[int, int]) -> tuple[int, Mask]:
    lo, hi = max(0, room[0] - SLACK_PX), min(ink.shape[1], room[1] + SLACK_PX)
    return lo, np.ascontiguousarray(ink[:, lo:hi])


def _best_fit(ink: Mask, room: tuple[int, int], text: str, font: Path, size: int) -> WordMatch | None:
    """Where ``text`` printed at ``size`` fits ``ink`` best within x ``room``: recall, and precision over all the
    ink of the room (what the print leaves unexplained counts against it, inside its box or not)."""
    lo, window = _window(ink, room)
    print_ = printed(text, font, size)
    h, w = print_.shape
    if h > window.shape[0] or w > window.shape[1]:
        return None
    shape = print_.astype(np.float32)
    kernel = np.ones((2 * INK_TOLERANCE_PX + 1,) * 2, np.uint8)
    grown = cv2.dilate(window.astype(np.uint8), kernel).astype(np.float32)
    wide = cv2.dilate(print_.astype(np.uint8), kernel).astype(np.float32)
    covered = cv2.matchTemplate(grown, shape, cv2.TM_CCORR)  # printed ink on page ink, at each place
    explained = cv2.matchTemplate(window.astype(np.float32), wide, cv2.TM_CCORR)  # page ink near printed ink
    recall = covered / float(shape.sum())
    precision = explained / max(1.0, float(window.sum()))
    b2 = RECALL_WEIGHT**2
    score = (1 + b2) * recall * precision / np.maximum(b2 * precision + recall, 1e-6)
    y, x = (int(v) for v in np.unravel_index(int(np.argmax(score)), score.shape))
    return WordMatch(text, float(recall[y, x]), float(precision[y, x]), (lo + x, y, lo + x + w, y + h))


def match_word(
    ink: Mask, room: tuple[int, int], candidates: Sequence[str], font: Path, size: int
) -> WordMatch | None:
    """The candidate that ``ink`` (a line's band, True = ink) shows within x ``room`` = (x0, x1), or ``None``."""
    if room[1] <= room[0] or size < MIN_SIZE_PX:
        return None
    scored = [fit for text in dict.fromkeys(candidates) if (fit := _best_fit(ink, room, text, font, size))]
    scored = sorted((m for m in scored if m.recall >= MIN_RECALL), key=lambda m: m.score, reverse=True)
    if not scored:
        return None
    best = scored[0]
    rival = next((m for m in scored[1:] if fold(m.text) != fold(best.text)), None)
    return None if rival is not None and best.score - rival.score < MIN_MARGIN else best
