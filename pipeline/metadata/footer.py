"""Last-page fields: ``Nơi nhận`` recipients (left) and the signature block (right): authority, title, name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.text import fold

from .found import Found
from .fuzzy import ratio
from .layout import Column, Line, PageLines, upper_ratio
from .repair import Lexicon
from .vocab import AUTHORITY_PREFIXES, COLLECTIVE_BODIES, SIGNER_TITLES, SURNAMES

_RECIPIENTS_RE = re.compile(r"^\W{0,2}n\w{0,2}i\s*nh\w{0,2}n\b")
_BULLETS = ("-", "\u2013", "\u2014", "+", "\u2022", "*")
_AUTHORITY_RE = re.compile(r"^(?P<a>t|k)\s*(?P<s>[/.\\|]?)\s*(?P<b>uq|m|t|l)(?P<s2>\.?)(?P<rest>.*)$")
_MAX_RECIPIENTS = 25
_MAX_SKIPPED = 4  # noise lines tolerated inside the recipient list
_NEXT_GAP = 2.6  # max distance between two recipient lines, in word heights
_SNAP = 80.0  # similarity (0 to 100) needed to replace an OCR'd title by a known one
_SNAP_DEPUTY = 55.0  # ... when the K/T authority predicts the title ("PHÓ" + the head's title)


@dataclass(frozen=True)
class Signature:
    """What the signature block yields."""

    authority: Found[str] | None
    title: Found[str] | None
    name: Found[str] | None


def _is_recipients_head(text: str) -> bool:
    """``Nơi nhận:`` (capital N: not the words "nơi nhận" at the start of a body line)."""
    m = _RECIPIENTS_RE.match(fold(text))
    if not m:
        return False
    first = next((ch for ch in text if ch.isalpha()), "")
    return first.isupper() or text[m.end() :].lstrip().startswith(":")


def find_recipients_anchor(pages: list[PageLines]) -> tuple[PageLines, Line] | None:
    """The ``Nơi nhận:`` line, searched from the last page backwards."""
    for page in reversed(pages):
        for ln in page.lines:
            if _is_recipients_head(ln.text):
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


def _is_junk_word(word: str) -> bool:
    """OCR debris inside a recipient line: stray symbols, one letter, odd case (``sG``), accented capitals
    (``YẾU``: abbreviations such as ``VT``, ``HĐND`` carry no tone marks)."""
    core = word.strip("()")
    if not core or any(not (ch.isalnum() or ch in "/.-") for ch in core):
        return True
    letters = "".join(ch for ch in core if ch.isalpha())
    if len(letters) == 1 and not core.isdigit():
        return True
    if len(letters) > 1 and not (letters.islower() or letters.isupper() or letters.istitle()):
        return True
    accented = any(fold(ch) != ch.lower() and ch not in "Đđ" for ch in letters)
    return letters.isupper() and len(letters) > 1 and accented


def _is_junk_tail(tail: str) -> bool:
    """A trailing ``, ...`` part of a recipient line that is debris rather than text (``huyện ủy``) or an
    abbreviation list (``VT, NC``)."""
    words = tail.split()
    if any(_is_junk_word(w) for w in words):
        return True
    has_word = any(sum(ch.isalpha() for ch in w) >= 3 for w in words)
    abbreviations = all(w.isalpha() and w.isupper() for w in words)
    return not (has_word or abbreviations)


def _drop_trailing_junk(text: str) -> str:
    """Cut OCR noise (seal or signature fragments) read after a recipient's ``,``/``;``/``.``."""
    parts = re.split(r"(?<=[,;.])", text)
    while len(parts) > 1:
        tail = parts[-1].strip().rstrip(",;.")
        if tail and not _is_junk_tail(tail):
            break
        parts.pop()
    return "".join(parts)


def _clean_item(text: str, lexicon: Lexicon) -> str:
    text = text.strip().lstrip("".join(_BULLETS) + " ").rstrip(" ,;.")
    return lexicon.fix(text)


def _is_noise_line(text: str) -> bool:
    """Seal or signature debris: no real word (3+ letters) or mostly symbols."""
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    has_word = any(len(w) >= 3 and w.isalpha() for w in re.findall(r"\w+", text))
    return not has_word or letters < 0.6 * len(visible)


def _ends_list(item: str) -> bool:
    """The last recipient ends with a full stop (``- Lưu VT.``)."""
    return item.rstrip().endswith(".")


def _next_item(items: list[str], text: str) -> str | None:
    """What ``text`` does to the list: "add", "join" (wrapped item), "skip" (noise), or None (the list ended)."""
    bullet = text.startswith(_BULLETS)
    if not bullet and (upper_ratio(text) > 0.7 or _is_noise_line(text)):
        return "skip"  # a signature line or seal debris interleaved by the OCR
    if bullet:
        body = text.lstrip("".join(_BULLETS) + " _")
        if items and _ends_list(items[-1]) and (not body or is_person_name(body)):
            return None  # the signer's name read with a dash after the last recipient
        return "add"
    if items and text[:1].islower() and not items[-1].rstrip().endswith((".", ";")):
        return "join"
    return None


def find_recipients(page: PageLines, anchor: Line, lexicon: Lexicon) -> Found[list[str]] | None:
    """Recipient lines under ``Nơi nhận:`` (bullets, wrapped items joined), without bullets and end marks."""
    items: list[str] = []
    used: list[Line] = [anchor]
    first = _inline_first(anchor)
    if first:
        items.append(first)
    skipped = 0
    for ln in _recipient_lines(page, anchor):
        text = _drop_trailing_junk(ln.text.strip())
        action = _next_item(items, text)
        if action is None or (action == "skip" and skipped >= _MAX_SKIPPED):
            break
        if action == "skip":
            skipped += 1
            continue
        if action == "add":
            items.append(text)
        else:
            items[-1] = f"{items[-1]} {text}"
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
    after = _text_signature_lines(page.lines[anchor.order + 1 :])
    start = next(
        (i for i in range(max(0, anchor.order - 6), anchor.order) if _authority(page.lines[i].text, True)), None
    )
    before = list(page.lines[start : anchor.order]) if start is not None else []
    return before + after


def _text_signature_lines(lines: tuple[Line, ...]) -> list[Line]:
    """Lines after ``Nơi nhận:`` that are not recipients (plain text: no columns to tell them apart)."""
    out: list[Line] = []
    list_ended = False
    for ln in lines:
        bullet = ln.text.startswith(_BULLETS)
        if ln.column == Column.RIGHT or not (bullet or ln.text[:1].islower()):
            out.append(ln)
        elif bullet and list_ended and is_person_name(ln.text):
            out.append(ln)  # the signer's name read with a dash after the last recipient
        list_ended = list_ended or (bullet and _ends_list(ln.text))
    return out


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
    scored = [(c, ratio(key, "".join(ch for ch in fold(c) if ch.isalpha()))) for c in choices]
    best, score = max(scored, key=lambda x: x[1])
    return (best, score) if score >= threshold else None


def _clean_upper(text: str) -> str:
    return " ".join(re.sub(r"^[\W_]+|[\W_]+$", "", text).split())


def _is_title_text(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 4 and upper_ratio(text) >= 0.7


def _strip_name(text: str) -> str:
    """A name line without OCR debris around it (``">*Nguyễn Văn An.`` → ``Nguyễn Văn An``)."""
    return re.sub(r"^[\W_]+|[\W_]+$", "", text)


def is_person_name(text: str) -> bool:
    """``Nguyễn Văn An``: 2 to 6 capitalised alphabetic words of 2+ letters (names are printed in title case; upper-case
    lines in the signature block are titles or seal text)."""
    words = _strip_name(text).split()
    if not 2 <= len(words) <= 6:
        return False
    return all(w.isalpha() and len(w) > 1 and w[0].isupper() and w[1:].islower() for w in words)


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
    auth_found = _authority_found(authority, region[auth_idx]) if authority and auth_idx is not None else None
    return Signature(
        auth_found, _title_found(title_lines, authority, auth_found), _pick_name([after[i] for i in names])
    )


def _authority_found(authority: tuple[str, str], line: Line) -> Found[str]:
    """``T/M`` + a known collective body, or ``K/T``/``T/L``/``TUQ`` + a known title (OCR noise snapped)."""
    prefix, rest = authority
    body = _snap(rest, COLLECTIVE_BODIES if prefix in ("T/M", "TM.") else SIGNER_TITLES, _SNAP)
    return Found(f"{prefix} {body[0] if body else _clean_upper(rest)}", (line,), 0.9)


def _title_found(
    title_lines: list[Line], authority: tuple[str, str] | None, auth_found: Found[str] | None
) -> Found[str] | None:
    """The signer's title; for a K/T signer whose title line was lost, the deputy title is inferred."""
    deputy = _deputy_titles(authority)
    title = _title_from_lines(title_lines[:2], deputy) if title_lines else None
    if title:
        return Found(title[0], tuple(title_lines[:1]), title[1])
    if deputy and auth_found is not None:
        return Found(deputy[0], auth_found.lines, 0.4)
    return None


def _pick_name(lines: list[Line]) -> Found[str] | None:
    """The signer's name: the last name-like line, preferring one that starts with a common family name."""
    if not lines:
        return None
    known = [ln for ln in lines if fold(_strip_name(ln.text).split()[0]) in SURNAMES]
    ln = (known or lines)[-1]
    return Found(_strip_name(ln.text), (ln,), 0.85 if known else 0.6)
