"""Secrecy stamps found as stamps, not only as words (issue 17): detect, clean for reading, match, decide.

Pure OpenCV/numpy. ``find_stamps`` looks in the header band of a first page for stamp-like ink: a coloured blob
of stamp size (red, blue, violet, faded), or a rectangular frame, whole or broken, in any ink, tilted up to ~10°.
``reading_images`` cuts each candidate out in several cleanings (ink colour separated from black text; bold
strokes kept and thin text dropped; frame removed; deskewed), which the flow reads as single lines with the OCR
engine. ``judge`` matches the readings against MẬT / TỐI MẬT / TUYỆT MẬT and the known look-alikes (KHẨN,
THƯỢNG KHẨN, HỎA TỐC, BẢN SAO, received stamps) with an edit distance that knows OCR's usual confusions, and
decides fail-closed: a candidate that is not positively something else counts as a secrecy mark at the highest
level its evidence allows, flagged for review unless it was read exactly. ``settle_classification`` folds those
verdicts into the document's metadata.

Detection lives in ``pipeline.stamp_detect``, the cleanings for reading in ``pipeline.stamp_read``; this module
matches and decides, and re-exports their public names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.stamp_detect import (
    ANGLES,
    CHROMA_MIN,
    GAP_MM,
    H_LINE_MM,
    HEADER_SHARE,
    LEFT_SHARE,
    MIN_H_MM,
    MIN_W_MM,
    STAMP_INKS,
    WORK_DPI,
    Candidate,
    find_stamps,
)
from pipeline.stamp_read import reading_images
from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrPage, OcrWord
from schemas.reasons import Reason, ReasonCode, reason
from schemas.text import fold

LEVELS = ("Mật", "Tối mật", "Tuyệt mật")


TOP_LEVEL = LEVELS[-1]


MARK_ACCEPT = 0.34  # normalised weighted edit distance for a secrecy reading


OTHER_ACCEPT = 0.26  # ... and for a positive look-alike reading (stricter: it clears the candidate)


SURE_CONFIDENCE, UNSURE_CONFIDENCE = 0.93, 0.45


# Readings compared with spaces removed, diacritics folded. Look-alikes are what a header stamp may
# positively be instead of a secrecy mark.
MARK_FORMS: dict[str, str] = {"mat": "Mật", "toimat": "Tối mật", "tuyetmat": "Tuyệt mật"}


OTHER_FORMS: dict[str, str] = {
    "khan": "KHẨN", "thuongkhan": "THƯỢNG KHẨN", "hoatoc": "HỎA TỐC", "bansao": "BẢN SAO", "saoy": "SAO Y",
    "den": "ĐẾN", "congvanden": "CÔNG VĂN ĐẾN", "duthao": "DỰ THẢO",
}


RECEIVED_WORDS = ("den", "so", "ngay", "chuyen", "luuhoso")


# OCR confusions on bold stamp capitals (folded): substitutions that cost little.
_CONFUSIONS = [set("a4@"), set("ti[]|!1l"), set("o0q"), set("e3c"), set("sz5"), set("uv"), set("hn"), set("mn")]


_NOISE = set("[]|!()'\".,:;-_~{}/\\`")


_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015/\\|_+.,:;~*•·]+")  # between words on a stamp (KHẨN/MẬT, SAO-MẬT)


@dataclass
class Verdict:
    """What a candidate is, and why (recorded in the document's provenance)."""

    box: tuple[int, int, int, int]
    page: int
    source: str
    ink: str
    angle: float
    readings: list[str]
    kind: str  # "secrecy" | "other" | "unreadable"
    level: str | None  # secrecy level for "secrecy" and "unreadable"
    exact: bool
    rule: str
    confidence: float
    matched: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# ------------------------------------------------------------------ matching


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.35 if any(a in g and b in g for g in _CONFUSIONS) else 1.0


def _align(read: str, target: str) -> float:
    """Weighted edit distance of ``target`` within ``read`` (free noise characters, cheap extra letters around)."""
    n, m = len(read), len(target)
    inf = float("inf")
    prev = [float(j) for j in range(m + 1)]
    best = prev[m] + 0.0
    for i in range(1, n + 1):
        ch = read[i - 1]
        skip = 0.1 if ch in _NOISE else 0.25
        cur = [prev[0] + skip] + [inf] * m
        for j in range(1, m + 1):
            cur[j] = min(prev[j] + (0.1 if ch in _NOISE else 1.0), cur[j - 1] + 1.0,
                         prev[j - 1] + _sub_cost(ch, target[j - 1]))
        prev = cur
        best = min(best + (0.1 if ch in _NOISE else 0.25), prev[m])
    return best / m


def _squash(text: str) -> str:
    return "".join(ch for ch in fold(text) if not ch.isspace())


def match_reading(text: str) -> tuple[str, str, float] | None:
    """Best (kind, value, distance) of one reading: kind "secrecy" (value a level) or "other" (a look-alike)."""
    read = _squash(text)
    if sum(ch.isalnum() for ch in read) < 2:
        return None
    scored = [("secrecy", v, _align(read, k)) for k, v in MARK_FORMS.items()]
    scored += [("other", v, _align(read, k)) for k, v in OTHER_FORMS.items()]
    return min(scored, key=lambda s: (s[2], -len(s[1])))


def _tokens(text: str) -> list[str]:
    """Folded words of a reading, split on spaces and the separators stamps and OCR put between words."""
    return [t for t in (_squash(p) for p in _SEPARATORS.split(text)) if sum(ch.isalnum() for ch in t) >= 2]


def secrecy_match(text: str) -> tuple[str, float] | None:
    """(level, distance) of the highest secrecy mark found in a reading, or None.

    Matched against the whole reading and against each word and run of up to three words, so that a mark beside a
    look-alike (``BẢN SAO-MẬT``, ``KHẨN/MẬT``) is found even when the look-alike is the better whole-reading match."""
    whole = _squash(text)
    if sum(ch.isalnum() for ch in whole) < 2:
        return None
    tokens = _tokens(text)
    groups = {whole} | {"".join(tokens[i : i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)}
    found: dict[str, float] = {}
    for group in groups:
        level, dist = min(((v, _align(group, k)) for k, v in MARK_FORMS.items()), key=lambda s: (s[1], -len(s[0])))
        if dist <= MARK_ACCEPT:
            found[level] = min(dist, found.get(level, dist))
    if not found:
        return None
    level = max(found, key=LEVELS.index)
    return level, found[level]


def _exact(text: str, level: str) -> bool:
    """The reading is the mark itself, diacritics included (``TÔI MẬT`` is close, not exact)."""
    letters = "".join(ch for ch in unicodedata.normalize("NFC", text.upper()) if ch.isalpha())
    return letters == level.upper().replace(" ", "")


def _received(readings: Sequence[str]) -> bool:
    words = [_squash(r) for r in readings]
    hits = {w for w in RECEIVED_WORDS for r in words if w in r and (w != "so" or any(c.isdigit() for c in r))}
    return ("den" in hits and len(hits) >= 2) or {"so", "ngay"} <= hits


def _level_by_width(info: dict[str, object]) -> str | None:
    """The longest mark the stamp's text line is wide enough for (bold capitals; ratio width / line height)."""
    ratio = info.get("width_per_height")
    if not isinstance(ratio, float) or info.get("rows") != 1:
        return None
    return "Tuyệt mật" if ratio > 5.6 else "Tối mật" if ratio > 3.7 else "Mật"


def judge(cand: Candidate, page: int, readings: Sequence[str], info: dict[str, object]) -> Verdict:
    """Decide what ``cand`` is from its readings (crop readings and the page pass's words inside it)."""
    readings = [r.strip() for r in readings if r and r.strip()]
    base = {"box": cand.box, "page": page, "source": cand.source, "ink": cand.ink,
            "angle": float(info.get("angle", cand.angle)),  # type: ignore[arg-type]
            "readings": list(readings), "extra": info}
    marks: list[tuple[float, str, str]] = []
    others: list[tuple[float, str, str]] = []
    for text in readings:
        # Fail closed: secrecy evidence anywhere in any reading wins over a look-alike, however well that matches.
        mark = secrecy_match(text)
        if mark is not None:
            marks.append((mark[1], mark[0], text))
        best = match_reading(text)
        if best is not None and best[0] == "other" and best[2] <= OTHER_ACCEPT:
            others.append((best[2], best[1], text))
    if marks:
        level = max((v for _, v, _ in marks), key=LEVELS.index)
        # a stamp that also reads as something else is classified at the level found, and reviewed
        exact = (any(_exact(t, level) for _, v, t in marks if v == level) and not others
                 and not _received(readings))
        by_width = _level_by_width(info)
        rule = f"đọc được dấu {level.upper()}"
        if by_width and LEVELS.index(by_width) > LEVELS.index(level) and not exact:
            level, rule = by_width, f"{rule}; khung chữ đủ rộng cho {by_width.upper()}: lấy mức cao hơn"
        dist, _, text = min((m for m in marks if m[1] == level), default=min(marks))
        return Verdict(**base, kind="secrecy", level=level, exact=exact, matched=text,  # type: ignore[arg-type]
                       rule=rule + ("" if exact else f" (gần đúng, sai số {dist:.2f})"),
                       confidence=SURE_CONFIDENCE if exact else UNSURE_CONFIDENCE)
    if _received(readings):
        return Verdict(**base, kind="other", level=None, exact=True, matched="ĐẾN",  # type: ignore[arg-type]
                       rule="dấu công văn đến", confidence=SURE_CONFIDENCE)
    if others:
        dist, value, text = min(others)
        return Verdict(**base, kind="other", level=None, exact=dist == 0, matched=text,  # type: ignore[arg-type]
                       rule=f"dấu {value}", confidence=SURE_CONFIDENCE)
    return Verdict(**base, kind="unreadable", level=TOP_LEVEL, exact=False, matched=None,  # type: ignore[arg-type]
                   rule="dấu không đọc được: coi như TUYỆT MẬT cho đến khi lưu trữ viên xác nhận",
                   confidence=UNSURE_CONFIDENCE)


def words_inside(ocr: OcrPage, box: tuple[int, int, int, int]) -> str:
    """The page pass's words whose centre lies inside ``box``, in reading order (one reading more)."""
    x0, y0, x1, y1 = box
    inside: list[OcrWord] = [w for w in ocr.words if x0 <= (w.box[0] + w.box[2]) / 2 <= x1
                             and y0 <= (w.box[1] + w.box[3]) / 2 <= y1]
    return " ".join(w.text for w in sorted(inside, key=lambda w: (w.line, w.box[0])))


def looks_like_first_page(ocr: OcrPage) -> bool:
    """A page whose header reads like a document's first page (national or Party heading, and a ``Số``)."""
    top = [w for w in ocr.words if w.box[3] < HEADER_SHARE * ocr.height]
    text = " ".join(fold(w.text) for w in top)
    heading = "cong san viet nam" in text or "chu nghia viet nam" in text
    return heading and any(fold(w.text).rstrip(":") == "so" for w in top)


# ------------------------------------------------------------------ decision


def stamp_reason(v: dict[str, object]) -> Reason:
    """Review reason naming the mark and its evidence crop (page, box, what was read, level, decision rule)."""
    box: Any = v.get("box") or ()
    readings: Any = v.get("readings") or []
    page: Any = v.get("page")
    return reason(ReasonCode.SECRECY_STAMP_UNSURE, page=page if isinstance(page, int) else str(page),
                  box=[int(c) for c in box], read=str(v.get("matched") or next(iter(readings), "") or ""),
                  level=str(v.get("level")), rule=str(v.get("rule")))


def settle_classification(metadata: DocumentMetadata, verdicts: Sequence[dict[str, object]]) -> list[Reason]:
    """Raise ``metadata.classification`` to the highest level the stamps allow; review reasons for the unsure.

    The text-based mark stays when it is higher. A level taken from a stamp not read exactly gets low evidence
    confidence (the document is then reviewed, and kept classified until an archivist confirms or lowers it)."""
    found = [v for v in verdicts if v.get("kind") in ("secrecy", "unreadable") and v.get("level") in LEVELS]
    if not found:
        return []
    best = max(found, key=lambda v: (LEVELS.index(str(v["level"])), bool(v.get("exact"))))
    level = str(best["level"])
    current = metadata.classification
    reasons = [stamp_reason(v) for v in found if not v.get("exact")]
    if current in LEVELS and LEVELS.index(current) > LEVELS.index(level):
        return reasons
    if current == level and (best.get("exact") or reasons == []):
        return reasons
    unsure = [v for v in found if not v.get("exact") and v.get("level") == level]
    raw = str(best.get("matched") or "") or " / ".join(str(r) for r in best.get("readings") or [])  # type: ignore[attr-defined]
    confidence = float(best["confidence"]) if not unsure else UNSURE_CONFIDENCE  # type: ignore[arg-type]
    metadata.classification = level
    metadata.evidence["classification"] = FieldEvidence(confidence=round(confidence, 3), page=int(best["page"]),  # type: ignore[call-overload]
                                                        raw=raw or None)
    return reasons


__all__ = [
    "ANGLES", "CHROMA_MIN", "GAP_MM", "HEADER_SHARE", "H_LINE_MM", "LEFT_SHARE", "LEVELS", "MARK_ACCEPT", "MARK_FORMS",
    "MIN_H_MM", "MIN_W_MM", "OTHER_ACCEPT", "OTHER_FORMS", "RECEIVED_WORDS", "STAMP_INKS", "SURE_CONFIDENCE",
    "TOP_LEVEL", "UNSURE_CONFIDENCE", "WORK_DPI", "Candidate", "Verdict", "find_stamps", "judge",
    "looks_like_first_page", "match_reading", "reading_images", "secrecy_match", "settle_classification",
    "stamp_reason", "words_inside"
]
