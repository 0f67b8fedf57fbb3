"""Last-page fields: ``Nơi nhận`` recipients (left) and the signature block (right): authority, title, name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.text import fold

from .delegate import DELEGATE_PREFIXES, delegate_title
from .found import Found
from .fuzzy import matched_shares, ratio
from .layout import Column, Line, PageLines, upper_ratio
from .organ import canonical_words
from .purposes import mend_purposes
from .repair import Lexicon, fix_place_names, mend_surname
from .vocab import AUTHORITY_PREFIXES, COLLECTIVE_BODIES, DEGREES, RANKS, SIGNER_TITLES, SURNAMES

_RECIPIENTS_RE = re.compile(r"^[\W_]{0,3}n?\w{0,2}i\s*nh\w{0,2}n\b")
_APPENDIX_RE = re.compile(r"^\W{0,2}phu\s*luc\b")
BULLETS = ("-", "\u2013", "\u2014", "+", "\u2022", "*")
_AUTHORITY_RE = re.compile(r"^(?P<a>t|k)\s*(?P<s>[/.\\|]?)\s*(?P<b>uq|m|t|l)(?P<s2>[.:]?)(?P<rest>.*)$")
_MAX_RECIPIENTS = 25
_MAX_SKIPPED = 4  # noise lines tolerated inside the recipient list
NEXT_GAP = 2.6  # max distance between two recipient lines, in word heights
_NOISE_CONF = 0.5  # a line read below this mean confidence is seal or signature ink, not a printed title
_RIGHT_BLOCK = 0.4  # a line starting right of this share of the page width belongs to the signature column
_SNAP = 80.0  # similarity (0 to 100) needed to replace an OCR'd title by a known one
_SNAP_DEPUTY = 55.0  # ... when the K/T authority predicts the title ("PHÓ" + the head's title)
_SURE_TITLE = 90.0  # similarity at which a snapped title is taken as read
_ACTING_RE = re.compile(r"^Q\s*[.:]\s*(?=\S{2})")
_MIN_INSIDE = 6  # letters of a known title found inside a garbled line (shorter ones match by chance)
_WORD_READ = 0.5  # share of a known title word's letters that must have been read for a snap to it


@dataclass(frozen=True)
class Signature:
    """What the signature block yields."""

    authority: Found[str] | None
    title: Found[str] | None
    name: Found[str] | None


def _is_recipients_head(text: str) -> bool:
    """``Nơi nhận:`` alone on its line (capital N, or the colon): not the words "nơi nhận" opening a body line
    (``Nơi nhận hồ sơ: ...``). The N may be lost under ink (``ơi nhận:``), but then the colon must be there."""
    folded = fold(text)
    m = _RECIPIENTS_RE.match(folded)
    if not m:
        return False
    rest = text[m.end() :].strip()
    if rest and not rest.startswith(":") and not rest.startswith(BULLETS) and sum(ch.isalpha() for ch in rest) > 2:
        return False
    colon = rest.startswith(":")
    if not folded.lstrip("._-~' ").startswith("n"):
        return colon
    first = next((ch for ch in text if ch.isalpha()), "")
    return first.isupper() or colon


def is_appendix(page: PageLines) -> bool:
    """A page that opens with ``PHỤ LỤC``: an annex after the document's own signature."""
    return any(_APPENDIX_RE.match(ln.folded) and ln.text.lstrip(" .-")[:1] == "P" for ln in page.by_y()[:3])


def document_pages(pages: list[PageLines]) -> list[PageLines]:
    """The pages of the document itself: page 1 up to the first annex page."""
    cut = next((i for i, page in enumerate(pages) if i > 0 and is_appendix(page)), len(pages))
    return pages[:cut]


def find_recipients_anchor(pages: list[PageLines]) -> tuple[PageLines, Line] | None:
    """The ``Nơi nhận:`` line, searched from the last page of the document (annexes excluded) backwards."""
    for page in reversed(document_pages(pages)):
        heads = [ln for ln in page.by_y() if _is_recipients_head(ln.text) and ln.column != Column.RIGHT]
        if heads:
            return page, heads[-1]
    return None


# ------------------------------------------------------------------ recipients


def _recipient_lines(page: PageLines, anchor: Line) -> list[Line]:
    if page.has_boxes:
        lines = [ln for ln in page.lines if ln.yc > anchor.yc + 0.3 * page.line_height and ln.xc < page.width / 2]
        out: list[Line] = []
        prev_y = anchor.yc
        for ln in page.by_y(lines):
            if ln.yc - prev_y > NEXT_GAP * page.line_height:
                break
            out.append(ln)
            prev_y = ln.yc
        return out
    return [ln for ln in page.lines[anchor.order + 1 :] if ln.column != Column.RIGHT]


def _inline_first(anchor: Line) -> str | None:
    """A first recipient written on the ``Nơi nhận:`` line itself (``Nơi nhận: - Như trên;``)."""
    m = _RECIPIENTS_RE.match(fold(anchor.text))
    rest = anchor.text[m.end() :].lstrip(" :") if m else ""
    return rest if rest.startswith(BULLETS) else None


def _is_junk_word(word: str) -> bool:
    """OCR debris inside a recipient line: stray symbols, one letter, odd case (``sG``), accented capitals
    (``YẾU``: abbreviations such as ``VT``, ``HĐND`` carry no tone marks)."""
    core = word.strip("()").rstrip(",;:.")
    if not core or any(not (ch.isalnum() or ch in "/.-&()") for ch in core):
        return True
    letters = "".join(ch for ch in core if ch.isalpha())
    if len(letters) == 1 and not core.isdigit():
        return True
    abbreviation = letters[:1].isupper() and sum(ch.isupper() for ch in letters) >= 3  # CTrTT, PVSơn
    if len(letters) > 1 and not (letters.islower() or letters.isupper() or letters.istitle() or abbreviation):
        return True
    accented = any(fold(ch) != ch.lower() and ch not in "Đđ" for ch in letters)
    return letters.isupper() and len(letters) > 1 and accented


def _is_junk_tail(tail: str) -> bool:
    """A trailing ``, ...`` part of a recipient line that is debris rather than text (``huyện ủy``) or an
    abbreviation list (``VT, NC``)."""
    words = tail.split()
    junk = sum(_is_junk_word(w) for w in words)
    if junk and 2 * junk >= len(words):
        return True  # one misread word among real ones ("Cán bộ lớp (để 1⁄h)") does not make the part debris
    has_word = any(sum(ch.isalpha() for ch in w) >= 3 for w in words)
    abbreviations = all(w.isalpha() and w.isupper() for w in words)
    return not (has_word or abbreviations)


def _drop_trailing_junk(text: str) -> str:
    """Cut OCR noise (seal or signature fragments) read after a recipient's ``,``/``;``/``.``."""
    parts = re.split(r"(?<=[,;])|(?<=\.)(?=[^\w.]|$)", text)
    while len(parts) > 1:
        tail = parts[-1].strip().rstrip(",;.")
        if tail and not _is_junk_tail(tail):
            break
        parts.pop()
    return "".join(parts)


def _clean_item(text: str, lexicon: Lexicon) -> str:
    text = text.strip().lstrip("".join(BULLETS) + " ").rstrip(" ,;.:")
    return mend_purposes(canonical_words(fix_place_names(lexicon.fix(text))))


def _is_noise_line(text: str) -> bool:
    """Seal or signature debris: no real word (3+ letters) or mostly symbols."""
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    has_word = any(len(w) >= 3 and w.isalpha() for w in re.findall(r"\w+", text))
    return not has_word or letters < 0.6 * len(visible)


def _ends_list(item: str) -> bool:
    """The last recipient ends with a full stop (``- Lưu VT.``)."""
    return item.rstrip().endswith(".")


_DEBRIS_BULLET_RE = re.compile(r"^[.,_`'\u00bb~^]{0,4}\s?(?:[-\u2013\u2014+\u2022*~^])\s?")


def normal_bullet(text: str) -> str:
    """``~- Như trên;``, ``.__~ Lưu``, ``^ Như trên`` → ``- ...``: a dash read with debris, or as ``~``/``^``."""
    m = _DEBRIS_BULLET_RE.match(text)
    return "- " + text[m.end() :].lstrip() if m and m.end() < len(text) else text


def _next_item(items: list[str], text: str) -> str | None:
    """What ``text`` does to the list: "add", "join" (wrapped item), "skip" (noise), or None (the list ended)."""
    bullet = text.startswith(BULLETS)
    if not bullet and items and items[-1].rstrip().endswith(",") and not _is_noise_line(text):
        return "join"  # the item goes on after its comma: "Văn phòng UBNDTP: CVP," / "PCVP ..., Phòng KGVX;"
    if not bullet and (upper_ratio(text) > 0.7 or _is_noise_line(text)):
        return "skip"  # a signature line or seal debris interleaved by the OCR
    if bullet:
        body = text.lstrip("".join(BULLETS) + " _")
        if items and _ends_list(items[-1]) and (not body or is_person_name(body)):
            return None  # the signer's name read with a dash after the last recipient
        return "add"
    if items and text[:1].islower() and not items[-1].rstrip().endswith((".", ";")):
        return "join"
    return None


def find_recipients(page: PageLines, anchor: Line, lexicon: Lexicon) -> Found[list[str]] | None:
    """Recipient lines under ``Nơi nhận:`` (bullets, wrapped items joined), without bullets and end marks."""
    first = _inline_first(anchor)
    return read_recipients(_recipient_lines(page, anchor), [first] if first else [], [anchor], lexicon, 0.85)


def read_recipients(lines: list[Line], items: list[str], used: list[Line], lexicon: Lexicon,
                    certainty: float) -> Found[list[str]] | None:
    """The recipients ``lines`` (top to bottom) list after the ``items`` already read."""
    skipped = 0
    for ln in lines:
        text = _drop_trailing_junk(normal_bullet(ln.text.strip()))
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
    return Found(cleaned, tuple(used), certainty) if cleaned else None


# ------------------------------------------------------------------ signature block


def _signature_region(page: PageLines, anchor: Line | None) -> list[Line]:
    """Right-column lines of the signature block, top to bottom."""
    if page.has_boxes:
        right = [
            ln
            for ln in page.lines
            if (ln.xc > page.width / 2 and ln.column != Column.CENTER)
            or (ln.box is not None and ln.box[0] >= _RIGHT_BLOCK * page.width)  # a long title crossing the middle
        ]
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
        bullet = ln.text.startswith(BULLETS)
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


def _snap(
    text: str, choices: tuple[str, ...] | list[str], threshold: float, whole: bool = True
) -> tuple[str, float] | None:
    """The known phrase most similar to ``text`` (folded letters), if similar enough. With ``whole``, only a phrase
    every word of which was read (most of its letters): a snap corrects misread letters, it never adds a word
    (``TRƯỜNG`` from a seal is not ``BỘ TRƯỞNG``, ``U TRƯỞNG`` is not ``VỤ TRƯỞNG``)."""
    key = _letters(text)
    if not key:
        return None
    scored = [(c, ratio(key, _letters(c))) for c in choices if not whole or _all_words_read(key, c)]
    if not scored:
        return None
    best, score = max(scored, key=lambda x: x[1])
    return (best, score) if score >= threshold else None


def _all_words_read(key: str, phrase: str) -> bool:
    """Was more than half of each word of ``phrase`` read in ``key`` (folded letters)?"""
    return all(share > _WORD_READ for share in matched_shares(key, [_letters(w) for w in phrase.split()]))


def is_title_fragment(text: str) -> bool:
    """``TRƯỜNG``, ``GIÁM``: words that are only a part of a known title (the rest lost under a seal or stroke)."""
    words = fold(_clean_upper(text)).split()
    if not words or " ".join(words) in {fold(t) for t in SIGNER_TITLES}:
        return False
    for title in SIGNER_TITLES:
        known = fold(title).split()
        if len(words) < len(known) and any(
            known[i : i + len(words)] == words for i in range(len(known) - len(words) + 1)
        ):
            return True
    return False


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


def person_name(text: str, mend: bool = True) -> str | None:
    """The signer's name on a name line, without seal debris before it (``E» Trịnh Văn Toàn``) and without an
    academic degree or a rank printed before it (``TS. Trịnh Văn Toàn``, ``Trung tá Ngô Văn Công``); with ``mend``,
    a family name's capital read as a sign put back (``repair.mend_surname``: ``[rương`` → ``Trương``)."""
    raw = text.split()
    words = _strip_name(" ".join([mend_surname(w) for w in raw[:3]] + raw[3:] if mend else raw)).split()
    while len(words) > 2 and not (words[0].isalpha() and len(words[0]) > 1) and not _prefix_len(words):
        words = words[1:]
        words[0] = _strip_name(words[0])
    words = words[_prefix_len(words) :]
    name = " ".join(words)
    return name if is_person_name(name) else None


def _prefix_len(words: list[str]) -> int:
    """How many leading words are a degree (``TS.``, ``PGS.TS.``) or a rank (``Trung tá``)."""
    n = 0
    while n < len(words) and fold(words[n]).rstrip(".").replace(".", " ").split() and all(
        part in DEGREES for part in fold(words[n]).rstrip(".").split(".")
    ):
        n += 1
    pair = " ".join(fold(w) for w in words[n : n + 2])
    return n + 2 if pair in RANKS else n


def _deputy_titles(authority: tuple[str, str] | None) -> list[str]:
    """Titles a K/T (deputy) signer can hold: ``K/T BÍ THƯ`` → ``PHÓ BÍ THƯ`` (+ ``THƯỜNG TRỰC``)."""
    if authority is None or authority[0] not in ("K/T", "KT."):
        return []
    head = _clean_upper(authority[1])
    snapped = _snap(head, SIGNER_TITLES, _SNAP)
    head = snapped[0] if snapped else head.upper()
    return [f"PHÓ {head}", f"PHÓ {head} THƯỜNG TRỰC"]


def _title_from_lines(lines: list[Line], deputy: list[str]) -> tuple[str, float] | None:
    """The signer's title from the first one or two title lines, snapped to known titles (what is printed first:
    the title a K/T authority predicts only when the printed one is not a known title)."""
    texts = [_clean_upper(lines[0].text)]
    acting = _ACTING_RE.match(texts[0])  # "Q. GIÁM ĐỐC": an acting head (quyền), the Q. is part of the title
    if acting:
        texts[0] = texts[0][acting.end() :]
    if len(lines) > 1:
        texts.append(f"{texts[0]} {_clean_upper(lines[1].text)}")
    title = _title_from_texts(texts, deputy)
    if title and acting:
        return f"Q. {title[0]}", title[1]
    return title


def _title_from_texts(texts: list[str], deputy: list[str]) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for text in texts:
        for choices, threshold in ((SIGNER_TITLES, _SNAP), (deputy, _SNAP_DEPUTY)):
            hit = _snap(text, choices, threshold, whole=choices is SIGNER_TITLES) if choices else None
            if hit and (best is None or hit[1] > best[1]):
                best = hit
        if best and best[1] >= _SURE_TITLE:
            break  # the first line alone is a known title
    if deputy and best and not fold(best[0]).startswith("pho "):
        # K/T: the signer is a deputy; a title read without "PHÓ" lost it (``GIÁM ĐỐC`` under ``KT. GIÁM ĐỐC``)
        hits = [hit for text in texts if (hit := _snap(text, deputy, _SNAP_DEPUTY, whole=False))]
        best = max(hits, key=lambda h: h[1]) if hits else best
    if best:
        return _with_qualifier(texts[0], best[0]), 0.9 if best[1] >= _SURE_TITLE else 0.7
    clean = all(w.isalpha() and w.isupper() and len(w) > 1 for w in texts[0].split())
    return (texts[0], 0.5) if texts[0] and clean and not is_title_fragment(texts[0]) else None


def _with_qualifier(text: str, title: str) -> str:
    """``TRƯỞNG PHÒNG CTSV`` → the known ``TRƯỞNG PHÒNG`` plus the unit or duty printed after it (``CTSV``,
    ``PHỤ TRÁCH``), when the line reads the known title exactly and then clean upper-case words."""
    words = text.split()
    key = "".join(ch for ch in fold(title) if ch.isalpha())
    for k in range(1, len(words)):
        if "".join(ch for ch in fold(" ".join(words[:k])) if ch.isalpha()) == key:
            rest = words[k:]
            if all(w.isalpha() and w.isupper() and len(w) > 1 for w in rest):
                return " ".join([title, *rest])
            break
    return title


def find_signature(page: PageLines, anchor: Line | None, party: bool) -> Signature:
    """Authority, signer title and signer name from the signature block of ``page``."""
    region = _signature_region(page, anchor)
    auth_idx = next((i for i, ln in enumerate(region) if _authority(ln.text, party)), None)
    auth_lines: list[Line] = []
    if auth_idx is not None:  # "TL. HIỆU TRƯỞNG" / "KT. TRƯỞNG PHÒNG ...": the last one is the signer's own
        auth_lines = [region[auth_idx]]
        while auth_idx + len(auth_lines) < len(region) and _authority(region[auth_idx + len(auth_lines)].text, party):
            auth_lines.append(region[auth_idx + len(auth_lines)])
    authority = _authority(auth_lines[-1].text, party) if auth_lines else None
    after = region[auth_idx + len(auth_lines) :] if auth_idx is not None else region
    names = [i for i, ln in enumerate(after) if person_name(ln.text)]
    title_lines = [
        ln for ln in after[: names[0] if names else len(after)] if _is_title_text(ln.text) and ln.conf >= _NOISE_CONF
    ]
    auth_found = _authority_found([_authority(ln.text, party) for ln in auth_lines], auth_lines) if authority else None
    block = after[: names[0]] if names else after
    return Signature(
        auth_found, _title_found(title_lines, authority, auth_found, block), _pick_name([after[i] for i in names])
    )


def _authority_found(authorities: list[tuple[str, str] | None], lines: list[Line]) -> Found[str]:
    """``T/M`` + a known collective body, or ``K/T``/``T/L``/``TUQ`` + a known title (OCR noise snapped)."""
    parts = []
    for authority in authorities:
        assert authority is not None
        prefix, rest = authority
        body = _snap(rest, COLLECTIVE_BODIES if prefix in ("T/M", "TM.") else SIGNER_TITLES, _SNAP)
        parts.append(f"{prefix} {body[0] if body else _clean_upper(rest)}")
    return Found(" ".join(parts), tuple(lines), 0.9)


def _title_found(
    title_lines: list[Line], authority: tuple[str, str] | None, auth_found: Found[str] | None,
    block: list[Line] | None = None,
) -> Found[str] | None:
    """The signer's title; for a K/T signer whose title line was lost, the deputy title is inferred; else a known
    title read inside a line the seal garbled (``//€5 Su CHỦ tịch``), with a low certainty."""
    deputy = _deputy_titles(authority)
    title = _title_from_lines(title_lines[:2], deputy) if title_lines else None
    if title:
        return Found(title[0], tuple(title_lines[:1]), title[1])
    delegated = delegate_title(title_lines[0].text) if title_lines and authority and (
        authority[0] in DELEGATE_PREFIXES) else None
    if delegated:
        return Found(delegated[0], tuple(title_lines[:1]), 0.6)
    if deputy and auth_found is not None:
        return Found(deputy[0], auth_found.lines, 0.4)
    return _title_inside(block or [])


def _title_inside(lines: list[Line]) -> Found[str] | None:
    """The longest known title (6+ letters) whose letters stand together in one line of the block."""
    for ln in lines:
        key = "".join(ch for ch in fold(ln.text) if ch.isalpha())
        hits = [t for t in SIGNER_TITLES if len(_letters(t)) >= _MIN_INSIDE and _letters(t) in key]
        if hits:
            return Found(max(hits, key=len), (ln,), 0.5)
    return None


def _letters(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalpha())


def _pick_name(lines: list[Line]) -> Found[str] | None:
    """The signer's name: the last name-like line, preferring one that starts with a common family name."""
    if not lines:
        return None
    names = [(ln, person_name(ln.text) or _strip_name(ln.text)) for ln in lines]
    known = [(ln, name) for ln, name in names if fold(name.split()[0]) in SURNAMES]
    ln, name = (known or names)[-1]
    mended = name != (person_name(ln.text, mend=False) or _strip_name(ln.text))  # a sign read as a capital
    return Found(name, (ln,), 0.85 if known and not mended else 0.6)
