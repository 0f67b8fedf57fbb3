"""Last-page fields: ``Nơi nhận`` recipients (left) and the signature block (right): authority, title, name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from schemas.text import fold

from .found import Found
from .layout import Column, Line, PageLines, upper_ratio
from .repair import Lexicon
from .vocab import AUTHORITY_PREFIXES, COLLECTIVE_BODIES, SIGNER_TITLES, SURNAMES

_RECIPIENTS_RE = re.compile(r"^\W{0,2}n\w{0,2}i\s*nh\w{0,2}n\b")
_BULLETS = ("-", "\u2013", "\u2014", "+", "\u2022", "*")
_AUTHORITY_RE = re.compile(r"^(?P<a>t|k)\s*(?P<s>[/.\\|]?)\s*(?P<b>uq|m|t|l)(?P<s2>\.?)(?P<rest>.*)$")
_MAX_RECIPIENTS = 25
_NEXT_GAP = 2.6  # max distance between two recipient lines, in word heights
_SNAP = 80.0  # similarity (0 to 100) needed to replace an OCR'd title by a known one
_SNAP_DEPUTY = 55.0  # ... when the K/T authority predicts the title ("PHÓ" + the head's title)


@dataclass(frozen=True)
class Signature:
    """What the signature block yields."""

    authority: Found[str] | None
    title: Found[str] | None
    name: Found[str] | None


def find_recipients_anchor(pages: list[PageLines]) -> tuple[PageLines, Line] | None:
    """The ``Nơi nhận:`` line, searched from the last page backwards."""
    for page in reversed(pages):
        for ln in page.lines:
            if _RECIPIENTS_RE.match(fold(ln.text)):
                return page, ln
    return None


# ------------------------------------------------------------------ recipients


def _recipient_lines(page: PageLines, anchor: Line) -> list[Line]:
    if page.has_boxes:
        lines = [ln for ln in page.lines if ln.yc > anchor.yc + 0.3 * page.line_height and ln.xc < page.width / 2]
        out: list[Line] = []
        prev_y = anchor.yc
        for ln in page.by_y(lines):
            if ln.yc - prev_y > _NEXT_GAP * page.line_height:
                break
            out.append(ln)
            prev_y = ln.yc
        return out
    return [ln for ln in page.lines[anchor.order + 1 :] if ln.column != Column.RIGHT]


def _inline_first(anchor: Line) -> str | None:
    """A first recipient written on the ``Nơi nhận:`` line itself (``Nơi nhận: - Như trên;``)."""
    m = _RECIPIENTS_RE.match(fold(anchor.text))
    rest = anchor.text[m.end() :].lstrip(" :") if m else ""
    return rest if rest.startswith(_BULLETS) else None


def _drop_trailing_junk(text: str) -> str:
    """Cut OCR noise (seal or signature fragments) read after a recipient's final ``,``/``;``/``.``."""
    m = re.search(r"^(.*[,;.])\s+(\S.*)$", text)
    if not m or text.rstrip().endswith((",", ";", ".")):
        return text
    tail = m.group(2).split()
    junk = (
        any(not w.isalpha() for w in tail) or any(len(w) == 1 for w in tail) or (len(tail) == 1 and len(tail[0]) <= 2)
    )
    return m.group(1) if junk else text


def _clean_item(text: str, lexicon: Lexicon) -> str:
    text = text.strip().lstrip("".join(_BULLETS) + " ").rstrip(" ,;.")
    return lexicon.fix(text)


def find_recipients(page: PageLines, anchor: Line, lexicon: Lexicon) -> Found[list[str]] | None:
    """Recipient lines under ``Nơi nhận:`` (bullets, wrapped items joined), without bullets and end marks."""
    items: list[str] = []
    used: list[Line] = [anchor]
    first = _inline_first(anchor)
    if first:
        items.append(first)
    for ln in _recipient_lines(page, anchor):
        text = ln.text.strip()
        if sum(ch.isalpha() for ch in text) < 2:
            continue
        if not text.startswith(_BULLETS) and upper_ratio(text) > 0.7:
            continue  # a signature line interleaved by the OCR
        if not page.has_boxes:
            text = _drop_trailing_junk(text)
        if text.startswith(_BULLETS):
            if items and items[-1].rstrip().endswith(".") and not text[1:].strip():
                break
            items.append(text)
        elif items and text[:1].islower() and not items[-1].rstrip().endswith((".", ";")):
            items[-1] = f"{items[-1]} {text}"
        else:
            break
        used.append(ln)
        if len(items) >= _MAX_RECIPIENTS:
            break
    cleaned = [c for c in (_clean_item(i, lexicon) for i in items) if sum(ch.isalpha() for ch in c) >= 2]
    return Found(cleaned, tuple(used), 0.85) if cleaned else None


# ------------------------------------------------------------------ signature block


def _signature_region(page: PageLines, anchor: Line | None) -> list[Line]:
    """Right-column lines of the signature block, top to bottom."""
    if page.has_boxes:
        right = [ln for ln in page.lines if ln.xc > page.width / 2 and ln.column != Column.CENTER]
        if anchor is not None:
            top = anchor.yc - 2 * page.line_height
        else:
            body = [ln.yc for ln in page.lines if ln.column == Column.CENTER]
            top = max(body) if body else page.height / 2
        return page.by_y([ln for ln in right if ln.yc >= top])
    if anchor is None:
        return list(page.lines[-8:])
    after = [
        ln
        for ln in page.lines[anchor.order + 1 :]
        if ln.column == Column.RIGHT or not (ln.text.startswith(_BULLETS) or ln.text[:1].islower())
    ]
    before = [ln for ln in page.lines[max(0, anchor.order - 6) : anchor.order] if _authority(ln.text, True)]
    return before[-1:] + after


def _authority(text: str, party: bool) -> tuple[str, str] | None:
    """(prefix, rest) of a signing-authority line: ``T/M BAN THƯỜNG VỤ`` → (``T/M``, ``BAN THƯỜNG VỤ``)."""
    stripped = re.sub(r"^[\W_]+", "", text)
    m = _AUTHORITY_RE.match(fold(stripped))
    if not m:
        return None
    key = m.group("a") + m.group("b")
    rest = stripped[m.start("rest") :].strip(" .:/_")
    separated = bool(m.group("s") or m.group("s2") or stripped[m.end("b") : m.end("b") + 1].isspace())
    if key not in AUTHORITY_PREFIXES or not separated or sum(ch.isalpha() for ch in rest) < 3:
        return None
    if upper_ratio(rest) < 0.7:
        return None
    slash, dot = AUTHORITY_PREFIXES[key]
    if m.group("s") in ("/", "\\", "|"):
        prefix = slash
    elif m.group("s") == "." or m.group("s2"):
        prefix = dot
    else:
        prefix = slash if party else dot
    return prefix, rest


def _snap(text: str, choices: tuple[str, ...] | list[str], threshold: float) -> tuple[str, float] | None:
    """The known phrase most similar to ``text`` (folded letters), if similar enough."""
    key = "".join(ch for ch in fold(text) if ch.isalpha())
    if not key:
        return None
    scored = [(c, fuzz.ratio(key, "".join(ch for ch in fold(c) if ch.isalpha()))) for c in choices]
    best, score = max(scored, key=lambda x: x[1])
    return (best, score) if score >= threshold else None


def _clean_upper(text: str) -> str:
    return " ".join(re.sub(r"^[\W_]+|[\W_]+$", "", text).split())


def _is_title_text(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 4 and upper_ratio(text) >= 0.7


def is_person_name(text: str) -> bool:
    """``Nguyễn Văn An``: 2 to 6 capitalised alphabetic words."""
    words = text.strip(" .,;:").split()
    if not 2 <= len(words) <= 6:
        return False
    if text.isupper() and _snap(text, SIGNER_TITLES + COLLECTIVE_BODIES, _SNAP):
        return False
    for w in words:
        if not w.isalpha() or not w[0].isupper():
            return False
        if len(w) > 1 and not w[1:].islower() and not (text.isupper() and fold(words[0]) in SURNAMES):
            return False
    return True


def _deputy_titles(authority: tuple[str, str] | None) -> list[str]:
    """Titles a K/T (deputy) signer can hold: ``K/T BÍ THƯ`` → ``PHÓ BÍ THƯ`` (+ ``THƯỜNG TRỰC``)."""
    if authority is None or authority[0] not in ("K/T", "KT."):
        return []
    head = _clean_upper(authority[1])
    snapped = _snap(head, SIGNER_TITLES, _SNAP)
    head = snapped[0] if snapped else head.upper()
    return [f"PHÓ {head}", f"PHÓ {head} THƯỜNG TRỰC"]


def _title_from_lines(lines: list[Line], deputy: list[str]) -> tuple[str, float] | None:
    """The signer's title from the first one or two title lines, snapped to known titles."""
    texts = [_clean_upper(lines[0].text)]
    if len(lines) > 1:
        texts.append(f"{texts[0]} {_clean_upper(lines[1].text)}")
    best: tuple[str, float] | None = None
    for text in texts:
        hit = _snap(text, deputy, _SNAP_DEPUTY) if deputy else None
        hit = hit or _snap(text, SIGNER_TITLES, _SNAP)
        if hit and (best is None or hit[1] > best[1]):
            best = hit
    if best:
        return best[0], 0.9 if best[1] >= 90 else 0.7
    clean = all(w.isalpha() and w.isupper() and len(w) > 1 for w in texts[0].split())
    return (texts[0], 0.5) if texts[0] and clean else None


def find_signature(page: PageLines, anchor: Line | None, party: bool) -> Signature:
    """Authority, signer title and signer name from the signature block of ``page``."""
    region = _signature_region(page, anchor)
    auth_idx = next((i for i, ln in enumerate(region) if _authority(ln.text, party)), None)
    authority = _authority(region[auth_idx].text, party) if auth_idx is not None else None
    after = region[auth_idx + 1 :] if auth_idx is not None else region
    names = [i for i, ln in enumerate(after) if is_person_name(ln.text)]
    title_lines = [ln for ln in after[: names[0] if names else len(after)] if _is_title_text(ln.text)]
    deputy = _deputy_titles(authority)
    title = _title_from_lines(title_lines[:2], deputy) if title_lines else None
    auth_found = None
    if authority is not None and auth_idx is not None:
        body = _snap(authority[1], COLLECTIVE_BODIES if authority[0] in ("T/M", "TM.") else SIGNER_TITLES, _SNAP)
        rest = body[0] if body else _clean_upper(authority[1])
        auth_found = Found(f"{authority[0]} {rest}", (region[auth_idx],), 0.9)
    title_found = Found(title[0], tuple(title_lines[:1]), title[1]) if title else None
    if title_found is None and deputy:
        title_found = Found(deputy[0], (region[auth_idx],) if auth_idx is not None else (), 0.4)
    return Signature(auth_found, title_found, _pick_name([after[i] for i in names]))


def _pick_name(lines: list[Line]) -> Found[str] | None:
    """The signer's name: the last name-like line, preferring one that starts with a common family name."""
    if not lines:
        return None
    known = [ln for ln in lines if fold(ln.text.split()[0]) in SURNAMES]
    ln = (known or lines)[-1]
    text = ln.text.strip(" .,;:")
    if text.isupper():
        text = " ".join(w[:1] + w[1:].lower() for w in text.split())
    return Found(text, (ln,), 0.85 if known else 0.6)
