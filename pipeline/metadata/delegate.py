"""The title of a signer who signs on behalf of the head: ``TL.`` (thừa lệnh) or ``TUQ.`` (thừa ủy quyền).

NĐ 30/2020 (Phụ lục I) lets the head of an organ have the chief of office or the head of a unit sign "thừa lệnh",
or anyone "thừa ủy quyền"; the title printed under ``TL. HIỆU TRƯỞNG`` is then a unit head's title followed by the
unit: ``TRƯỞNG PHÒNG ĐÀO TẠO``, ``CHÁNH VĂN PHÒNG``, ``VỤ TRƯỞNG VỤ PHÁP CHẾ``. That prior lets a title line whose
first word the signature or seal ink garbled (``ZfƯONDRHÒNG ĐÀO TẠO``) be read as the closest unit-head title,
with the unit words after it kept as printed, at a low certainty (the field is then flagged for review).
"""

from __future__ import annotations

import re

from schemas.text import fold

from .fuzzy import matched_shares, ratio

DELEGATE_PREFIXES = frozenset({"T/L", "TL.", "T/UQ", "TUQ."})
# titles of a unit's head or deputy head: who signs TL./TUQ. under the organ head's title
UNIT_HEAD_TITLES: tuple[str, ...] = (
    "TRƯỞNG PHÒNG", "PHÓ TRƯỞNG PHÒNG", "CHÁNH VĂN PHÒNG", "PHÓ CHÁNH VĂN PHÒNG", "TRƯỞNG BAN", "PHÓ TRƯỞNG BAN",
    "VỤ TRƯỞNG", "PHÓ VỤ TRƯỞNG", "CỤC TRƯỞNG", "PHÓ CỤC TRƯỞNG", "CHÁNH THANH TRA", "PHÓ CHÁNH THANH TRA",
    "GIÁM ĐỐC", "PHÓ GIÁM ĐỐC",
)
SNAP_DELEGATE = 60.0  # similarity (0 to 100) of the head words to a unit-head title
_MIN_READ = 0.7  # the head words have at least this share of the title's letters
_WORD_SEEN = 0.5  # ... and half the letters of each of its words, at least 2 (a snap never adds a word)


def _letters(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalpha())


def _clean_word(word: str) -> bool:
    return word.isalpha() and word.isupper() and len(word) > 1


def _every_word_seen(head: str, words: list[str]) -> bool:
    shares = matched_shares(head, words)
    return all(share >= _WORD_SEEN and round(share * len(w)) >= 2 for share, w in zip(shares, words, strict=True))


def delegate_title(text: str) -> tuple[str, float] | None:
    """(title, similarity) for a TL./TUQ. signer's title line: its first words snapped to the closest unit-head
    title, the clean upper-case words after them kept as the unit (``ZfƯONDRHÒNG ĐÀO TẠO`` → ``TRƯỞNG PHÒNG ĐÀO
    TẠO``); None when no split of the line is close enough."""
    words = re.sub(r"^[\W_]+|[\W_]+$", "", text).split()
    best: tuple[str, float] | None = None
    for k in range(1, len(words) + 1):
        unit = words[k:]
        if not all(_clean_word(w) for w in unit):
            continue
        head = _letters(" ".join(words[:k]))
        for title in UNIT_HEAD_TITLES:
            key = _letters(title)
            score = ratio(head, key)
            if score < SNAP_DELEGATE or len(head) < _MIN_READ * len(key) or (best and score <= best[1]):
                continue
            if _every_word_seen(head, [_letters(w) for w in title.split()]):
                best = (" ".join([title, *unit]), score)
    return best
