"""The purpose of a recipient, ``(để b/c)``, ``(để t/h)``: one of a few fixed words, printed in small italics.

NĐ 30/2020 practice writes after a recipient why it receives the document: ``(để báo cáo)``, ``(để b/c)``,
``(để thực hiện)``, ``(để t/h)``, ``(để biết)``, ``(để phối hợp)``... In 8-point italics the engine reads
``(để 1/h)`` or ``(để be)``: one letter taken for its look-alike. A purpose that is not one of ``PURPOSES`` becomes
the one purpose it differs from by a single look-alike (``LOOK_ALIKES``: ``1``/``t``/``l``/``i``, ``e``/``c``,
``0``/``o``), when exactly one such purpose exists; anything else stays as read.
"""

from __future__ import annotations

import re

PURPOSES: frozenset[str] = frozenset({
    "b/c", "bc", "báo cáo", "t/h", "th", "thực hiện", "biết", "p/h", "ph", "phối hợp", "c/đ", "chỉ đạo", "t/d",
    "theo dõi", "k/t", "kiểm tra", "g/s", "giám sát", "x/l", "xử lý", "đăng tin", "tổng hợp", "thi hành",
    "phổ biến", "chỉ đạo thực hiện", "biết và thực hiện",
})
LOOK_ALIKES: frozenset[frozenset[str]] = frozenset(
    frozenset(pair) for pair in (("1", "t"), ("1", "l"), ("1", "i"), ("l", "t"), ("l", "i"), ("e", "c"), ("0", "o"))
)
_PURPOSE_RE = re.compile(r"\((\s*)(để)(\s+)([^()]{1,24}?)(\s*)\)")


def _look_alike(read: str, word: str) -> bool:
    """``read`` is ``word`` with exactly one character taken for its look-alike."""
    if len(read) != len(word):
        return False
    diffs = [(a, b) for a, b in zip(read, word, strict=True) if a != b]
    return len(diffs) == 1 and frozenset(diffs[0]) in LOOK_ALIKES


def _purpose(read: str) -> str:
    if read in PURPOSES:
        return read
    found = [p for p in PURPOSES if _look_alike(read, p)]
    return found[0] if len(found) == 1 else read


def mend_purposes(item: str) -> str:
    """``item`` with each ``(để X)`` purpose read as the fixed purpose X's look-alike stands for."""
    return _PURPOSE_RE.sub(lambda m: f"({m[1]}{m[2]}{m[3]}{_purpose(m[4])}{m[5]})", item)
