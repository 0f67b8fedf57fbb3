"""Repair of a misread ký hiệu by rule: the type abbreviation must be one of TT 05 / HD 36, and the organ part
after it is made of the initials of the issuing organ's header lines (``TRƯỜNG ĐẠI HỌC ĐIỆN LỰC`` → ``ĐHĐL``,
``THÀNH ỦY`` → ``TU``). One deleted or substituted character is repaired when exactly one repair fits."""

from __future__ import annotations

import re

from schemas.text import fold

from .vocab import ABBREVIATIONS

REPAIRED_CERTAINTY = 0.7  # a repaired ký hiệu is a reasoned guess: its evidence confidence is scaled by this
_MAX_TYPE_LEN = 4
_KNOWN = {fold(k) for k in ABBREVIATIONS} | {"tt"}


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def _initials(line: str) -> str:
    return "".join(w[0] for w in re.findall(r"[^\W\d_]+", line))


def _edits(seg: str, alphabet: str) -> set[str]:
    """``seg`` with one character deleted or replaced by a letter of ``alphabet``."""
    out = {seg[:i] + seg[i + 1 :] for i in range(len(seg))}
    out |= {seg[:i] + ch + seg[i + 1 :] for i in range(len(seg)) for ch in alphabet if ch != seg[i]}
    return {c for c in out if len(c) >= 2}


def _repair_type(seg: str) -> str | None:
    if fold(seg) in _KNOWN or len(seg) > _MAX_TYPE_LEN or not seg.isupper():
        return None
    fits = {c for c in (seg[:i] + seg[i + 1 :] for i in range(len(seg))) if fold(c) in _KNOWN}
    return fits.pop() if len(fits) == 1 else None


def _repair_organ(seg: str, organ_lines: list[str]) -> str | None:
    """The organ part repaired against the initials of the organ lines (the issuing line first)."""
    key = fold(seg)
    if not seg.isupper() or "w" in key or len(seg) < 2:  # TW: Trung ương is not written by its initials
        return None
    for depth in range(1, len(organ_lines) + 1):
        initials = "".join(_initials(ln) for ln in organ_lines[-depth:]).upper()
        if _is_subsequence(key, fold(initials)):
            return None
        if any(ch not in fold(initials) for ch in key):
            fits = {c for c in _edits(seg, initials) if _is_subsequence(fold(c), fold(initials))}
            if len(fits) == 1:
                return fits.pop()
            if fits:
                return None
    return None


def repair_notation(notation: str, organ_lines: list[str]) -> tuple[str, bool]:
    """(ký hiệu, repaired?) for ``QĐĐ/QU`` → ``QĐ/QU``, ``HD/EU`` → ``HD/TU``, ``TB-ĐHĐIL`` → ``TB-ĐHĐL``."""
    parts = re.split(r"([/-])", notation)
    segs = parts[0::2]
    if len(segs) < 2 or not all(segs):
        return notation, False
    changed = False
    fixed = _repair_type(segs[0])
    if fixed:
        segs[0], changed = fixed, True
    organ_idx = 1 if fold(segs[0]) in _KNOWN else 0
    fixed = _repair_organ(segs[organ_idx], organ_lines) if organ_lines else None
    if fixed:
        segs[organ_idx], changed = fixed, True
    out = segs[0] + "".join(sep + seg for sep, seg in zip(parts[1::2], segs[1:], strict=True))
    return out, changed
