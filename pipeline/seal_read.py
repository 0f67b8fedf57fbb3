"""Lines under a black seal: which to read again, how to settle a signer's name, and merging the result.

The caller finds the seals and cuts the lines crossing them (``pipeline.seal``), reads the chosen lines with the
engine, one by one, and hands the readings back here. A line the page pass read confidently is left alone; one it
missed or doubted is read again from the cleaned cut-out. When that reading looks like a person's name (two to
five title-case words), each run of doubtful words is settled by elimination (``pipeline.name_match``): the
first word among the family names, the others among common given names, with the engine's own reading as one
more candidate when it looks like a name word. Settled words get ``MATCHED_CONFIDENCE``, so the name still
counts as uncertain.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.metadata.vocab import GIVEN_NAME_FORMS, SURNAME_FORMS
from pipeline.name_match import SLACK_PX, Mask, WordMatch, fit_size, match_word
from pipeline.seal import INK_LEVEL, SealRing, TextBand
from schemas.ocr import OcrPage, OcrWord

Box = tuple[int, int, int, int]

CONFIDENT = 0.85  # a page-pass word this confident needs no second reading; a re-read word this sure stays
MIN_NEW_CONFIDENCE = 0.7  # a line the page pass missed is added only when read at least this confidently ...
MATCHED_CONFIDENCE = 0.7  # confidence given to a word settled by elimination
MIN_REFERENCE_LETTERS = 3  # the word that gives the name's font size has this many letters at least
MAX_NAME_WORDS = 5
MAX_LINE_WORDS = 10  # a name's line as read, debris included
MAX_SLOT_WORDS = 3  # name words looked for in one run of doubtful words
REST_WIDTH = 0.5  # another word is looked for while this many font sizes of ink columns are left in the run
MAX_GAP = 0.6  # font sizes between two words of a name, at most
MAX_DEBRIS_LETTERS = 0  # a run at the line's edge that no name matches is dropped when it has no letter


@dataclass(frozen=True)
class SealLine:
    """A line crossing a seal that is worth a second reading."""

    band: TextBand
    ring: SealRing
    words: tuple[OcrWord, ...]  # what the page pass read there (maybe nothing)


def _centre_in(word: OcrWord, box: Box) -> bool:
    cx, cy = (word.box[0] + word.box[2]) / 2, (word.box[1] + word.box[3]) / 2
    return box[0] <= cx < box[2] and box[1] <= cy < box[3]


def lines_to_reread(page: OcrPage, bands: Sequence[tuple[SealRing, TextBand]]) -> list[SealLine]:
    """The bands the page pass missed (no word there) or doubted (a word below ``CONFIDENT``)."""
    out = []
    for ring, band in bands:
        words = tuple(w for w in page.words if _centre_in(w, band.box))
        if not words or min(w.confidence for w in words) < CONFIDENT:
            out.append(SealLine(band, ring, words))
    return out


def _is_name_word(text: str) -> bool:
    return text.isalpha() and text[0].isupper() and (len(text) == 1 or text[1:].islower())


def _slots(words: list[OcrWord]) -> list[tuple[OcrWord, ...]]:
    """Runs of words between the words read confidently as name words (each confident word a run of its own)."""
    out: list[tuple[OcrWord, ...]] = []
    run: list[OcrWord] = []
    for word in words:
        if word.confidence >= CONFIDENT and _is_name_word(word.text):
            if run:
                out.append(tuple(run))
                run = []
            out.append((word,))
        else:
            run.append(word)
    if run:
        out.append(tuple(run))
    return out


def _sure(slot: tuple[OcrWord, ...]) -> bool:
    return len(slot) == 1 and slot[0].confidence >= CONFIDENT and _is_name_word(slot[0].text)


def _letters(slot: tuple[OcrWord, ...]) -> int:
    return sum(ch.isalpha() for w in slot for ch in w.text)


def _has_word(clean: Mask, room: tuple[int, int], size: int) -> bool:
    """A word's width of ink (in the cut-out cleaned of the seal) between x ``room``."""
    return len(np.flatnonzero(clean[:, max(0, room[0]) : max(0, room[1])].any(axis=0))) >= REST_WIDTH * size


def _spell(line: SealLine, room: tuple[int, int], first: bool, read: str, font: Path, size: int,
           depth: int = 0) -> list[WordMatch] | None:
    """The name words the line shows within x ``room``, left to right, or ``None``.

    A run of doubtful words may be one fused word or several (``he33¿x)uang`` for ``Hoàng Quang``): the best
    word is matched, then what is left of the room on either side while it holds a word's width of ink. Left of
    a name's first word, ink no name matches is the seal's."""
    candidates = SURNAME_FORMS if first else GIVEN_NAME_FORMS + SURNAME_FORMS
    if _is_name_word(read):
        candidates = (*candidates, read)
    match = match_word(line.band.ink, room, candidates, font, size)
    if match is None or depth >= MAX_SLOT_WORDS:
        return None if match is None else [match]
    clean = line.band.image < INK_LEVEL
    left: list[WordMatch] = []
    left_room = (room[0], match.box[0] - SLACK_PX)
    if _has_word(clean, left_room, size):
        found = _spell(line, left_room, first, "", font, size, depth + 1)
        adjacent = found is not None and match.box[0] - found[-1].box[2] <= MAX_GAP * size
        if (found is None or not adjacent) and not first:
            return None
        left = found if found is not None and adjacent else []
    right: list[WordMatch] = []
    right_room = (match.box[2] + SLACK_PX, room[1])
    if _has_word(clean, right_room, size):
        found = _spell(line, right_room, False, "", font, size, depth + 1)
        if found is None:
            return None
        right = found
    return [*left, match, *right]


def settle_name(words: list[OcrWord], line: SealLine, font: Path) -> list[OcrWord] | None:
    """``words`` (read from the line's cut-out, in its pixels) with the doubtful ones settled, when the line
    reads as a person's name under the seal; ``None`` when it does not."""
    if not 2 <= len(words) <= MAX_LINE_WORDS:
        return None
    words = sorted(words, key=lambda w: w.box[0])
    slots = _slots(words)
    sure = [slot[0] for slot in slots if _sure(slot)]
    reference = max((w for w in sure if len(w.text) >= MIN_REFERENCE_LETTERS), key=lambda w: w.confidence,
                    default=None)
    if reference is None:
        return None
    ink: Mask = line.band.ink
    size = fit_size(reference.text, ink, (reference.box[0], reference.box[2]), reference.box[3] - reference.box[1],
                    font)
    if size is None:
        return None
    out: list[OcrWord] = []
    for i, slot in enumerate(slots):
        if _sure(slot):
            out.append(slot[0])
            continue
        room = (slots[i - 1][-1].box[2] if i else 0, slots[i + 1][0].box[0] if i + 1 < len(slots) else ink.shape[1])
        read = " ".join(w.text for w in slot)
        spelled = _spell(line, room, not out, read, font, size)
        if spelled is None:
            if _letters(slot) <= MAX_DEBRIS_LETTERS and (i == 0 or i == len(slots) - 1):
                continue  # seal debris beside the name
            return None
        top, bottom = min(w.box[1] for w in slot), max(w.box[3] for w in slot)
        out.extend(OcrWord(text=m.text, box=(m.box[0], top, m.box[2], bottom), confidence=MATCHED_CONFIDENCE,
                           line=slot[0].line, block=slot[0].block) for m in spelled)
    if not 2 <= len(out) <= MAX_NAME_WORDS or out[0].text not in SURNAME_FORMS:
        return None
    return out


def _text_like(words: Sequence[OcrWord]) -> bool:
    text = "".join(w.text for w in words)
    return sum(ch.isalnum() for ch in text) >= 3


def _mean(words: Sequence[OcrWord]) -> float:
    return statistics.fmean(w.confidence for w in words) if words else 0.0


def _placed(words: Sequence[OcrWord], box: Box, line: int, block: int) -> list[OcrWord]:
    x, y = box[0], box[1]
    return [w.model_copy(update={"box": (w.box[0] + x, w.box[1] + y, w.box[2] + x, w.box[3] + y),
                                 "line": line, "block": block}) for w in words]


def merge_seal_line(page: OcrPage, line: SealLine, words: list[OcrWord], *, name: bool) -> OcrPage | None:
    """``page`` with the line's new reading (``words`` in the cut-out's pixels) in place of the page pass's, or
    ``None`` when the page pass's reading stays: a name always replaces it; other text only when read more
    confidently (and at least ``MIN_NEW_CONFIDENCE`` when the page pass read nothing there)."""
    if not words or not _text_like(words):
        return None
    if not name:
        floor = _mean(line.words) if line.words else MIN_NEW_CONFIDENCE
        if _mean(words) <= floor:
            return None
    block = max((w.block for w in page.words), default=-1) + 1
    new = _placed(sorted(words, key=lambda w: w.box[0]), line.band.box, 0, block)
    dropped = {id(w) for w in line.words}
    kept = [w for w in page.words if id(w) not in dropped]
    top = line.band.box[1]
    at = next((i for i, w in enumerate(kept) if w.box[1] > top), len(kept))  # engine order: top to bottom
    merged = kept[:at] + new + kept[at:]
    return page.model_copy(update={"words": merged, "confidence": _mean(merged)})

