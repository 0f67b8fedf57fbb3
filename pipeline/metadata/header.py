"""Page-1 header fields: number and symbol, place and date, issuing organ, secrecy and urgency marks."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from schemas.text import fold

from .found import Found
from .fuzzy import levenshtein
from .handwriting import TEMPLATE_DATE_RE, FillIn, date_fill_in
from .layout import Column, Line, PageLines, upper_ratio
from .organ import canonical_words, compose_state_organ
from .repair import Lexicon, fix_place_names, to_digits
from .vocab import (
    ABBREVIATIONS,
    ACRONYMS,
    ADMIN_LEVELS,
    CLASSIFICATION_MARKS,
    COMMITTEE_WORDS,
    MARK_NEIGHBOURS,
    PARTY_TT,
    STATE_TT,
    URGENCY_MARKS,
)

_HEADER_SHARE = 0.45  # the header lives in the top 45 % of page 1
_TEXT_HEADER_LINES = 30  # ... or in the first 30 lines without boxes
_CODE_RE = re.compile(
    r"(?<![a-z0-9])so\s*[:.,]?\s*(?P<num>[^\s/\-\u2013.]{1,7}?)\s*[-\u2013/.]\s*(?:\d{4}\s*/\s*)?"
    r"(?P<nota>[a-z][a-z0-9]{0,7}(?:\s?[-/\u2013]\s?[a-z0-9]{1,10}){1,3})(?![a-z0-9])"
)
_NOTATION_ONLY_RE = re.compile(
    r"(?<![a-z0-9])so\b.{0,12}?(?P<nota>[a-z]{1,5}(?:\s?[-/]\s?[a-z]{1,10}){1,2})(?![a-z0-9])"
)
_D = r"[0-9oqilj|\]\[!¡sz]"
_DATE_RE = re.compile(
    rf"ngay\s*(?P<d>{_D}{{1,2}})\s*[,.]?\s*thang\s*(?P<m>{_D}{{1,2}})\s*[,.]?\s*nam\s*(?P<y>{_D}{{4}})"
)
_NUMERIC_DATE_RE = re.compile(r",\s*ngay\s*(?P<d>\d{1,2})\s*[/.-]\s*(?P<m>\d{1,2})\s*[/.-]\s*(?P<y>\d{4})")
_NATIONAL_RE = re.compile(r"cong\s*san\s*viet\s*nam|chu\s*nghia\s*viet\s*nam|doc\s*lap\W+tu\s*do")
_MIN_YEAR, _MAX_YEAR = 1900, 2100
_AXIS_SLACK = 0.025  # max offset of an organ line's centre from the first one's, as a share of page width


@dataclass(frozen=True)
class Code:
    """Number and symbol: ``Số 15-NQ/TU`` → number "15", notation "NQ/TU"; ``region``: where the number is read."""

    number: str | None
    notation: str
    region: tuple[int, int] = (0, 0)  # characters of the line between ``Số`` and the ký hiệu


@dataclass(frozen=True)
class DatePlace:
    """``Đà Nẵng, ngày 25 tháng 5 năm 2023`` → ISO date and place (date None: a handwritten fill-in)."""

    date: str | None
    place: str | None
    fill: FillIn | None = None
    year: str | None = None  # the printed year of a template date line


def header_zone(page: PageLines) -> list[Line]:
    """Lines of the header part of page 1, top to bottom."""
    if page.has_boxes:
        return page.by_y([ln for ln in page.lines if ln.yc < _HEADER_SHARE * page.height])
    return list(page.lines[:_TEXT_HEADER_LINES])


# ------------------------------------------------------------------ number and symbol


def _prefix_is_stamp(text: str) -> bool:
    """True if ``text`` (before ``Số``) has no running-text word (a stamp or noise at most)."""
    return not any(sum(ch.islower() for ch in tok) >= 2 for tok in text.split())


def _clean_notation(raw: str) -> str:
    return re.sub(r"\s+", "", raw).replace("\u2013", "-").strip("-/.")


def _drop_junk_head(text: str, start: int) -> int:
    """Start of the real ký hiệu: a leading piece without a capital letter (``é/TB-ĐHĐL``) is fill-in debris."""
    head = re.match(r"([^\s/\-\u2013]+)\s?[/\-\u2013]\s?(?=\S*[A-ZĐ])", text[start:])
    if head and not any(ch.isupper() for ch in head.group(1)):
        return start + head.end()
    return start


def find_code(zone: list[Line]) -> Found[Code] | None:
    """The ``Số ...`` number and symbol in the header zone."""
    for ln in zone:
        m = _CODE_RE.search(ln.folded)
        if m and _code_anchor_ok(ln.text, m.start()):
            nota_start = _drop_junk_head(ln.text, m.start("nota"))
            if nota_start >= m.end("nota"):
                continue
            number = to_digits(ln.text[m.start("num") : m.end("num")]) if nota_start == m.start("nota") else None
            nota = _clean_notation(ln.text[nota_start : m.end("nota")])
            certainty = 0.95 if number else 0.6
            code = Code(number, nota, (m.start("num"), nota_start))
            return Found(code, (ln,), certainty, ln.text[m.start() : m.end()])
    for ln in zone:
        m = _NOTATION_ONLY_RE.search(ln.folded)
        if m and _code_anchor_ok(ln.text, m.start()):
            nota_start = _drop_junk_head(ln.text, m.start("nota"))
            nota = _clean_notation(ln.text[nota_start : m.end("nota")])
            label = re.match(r"so\s*[:.,]?", ln.folded[m.start() :])
            region = (m.start() + (label.end() if label else 2), nota_start)
            return Found(Code(None, nota, region), (ln,), 0.5, ln.text[m.start() : m.end()])
    return None


def _code_anchor_ok(text: str, start: int) -> bool:
    return text[start : start + 1] == "S" or _prefix_is_stamp(text[:start])


def type_from_notation(notation: str) -> str | None:
    """Document type from the abbreviation in a number-symbol (Party ``NQ/TU`` or state ``QĐ-UBND``)."""
    party = "/" in notation
    abbr = re.split(r"[/-]", notation)[0].upper()
    if abbr == "TT":
        return PARTY_TT if party else STATE_TT
    if abbr in ABBREVIATIONS:
        return ABBREVIATIONS[abbr]
    by_fold: dict[str, set[str]] = {}
    for key, name in ABBREVIATIONS.items():
        by_fold.setdefault(fold(key), set()).add(name)
    names = by_fold.get(fold(abbr), set())
    return next(iter(names)) if len(names) == 1 else None


# ------------------------------------------------------------------ place and date


def _valid_date(d: str, m: str, y: str) -> str | None:
    dd, mm, yy = to_digits(d), to_digits(m), to_digits(y)
    if not (dd and mm and yy):
        return None
    try:
        date = dt.date(int(yy), int(mm), int(dd))
    except ValueError:
        return None
    return date.isoformat() if _MIN_YEAR <= date.year <= _MAX_YEAR else None


def _template_date(zone: list[Line], lexicon: Lexicon) -> Found[DatePlace] | None:
    """The header date line of a template (``ngày .... tháng .... năm 2025``): its date, unless handwritten."""
    for ln in zone:
        loose = TEMPLATE_DATE_RE.search(ln.folded)
        if not loose or not _dateline_context(ln, ln.text[: loose.start()]):
            continue
        strict = _DATE_RE.search(ln.folded, loose.start())
        m = strict if strict and strict.start() < loose.end() else loose
        fill = date_fill_in(ln, m.span("d"), m.span("m"), m.span("y"))
        iso = _valid_date(*(ln.text[m.start(g) : m.end(g)] for g in "dmy")) if m is strict else None
        place = _place_before(ln.text[: loose.start()], lexicon)
        year = ln.text[m.start("y") : m.end("y")]
        if fill.handwritten:
            return Found(DatePlace(None, place, fill, year), (ln,), 0.0, ln.text[loose.start() :].strip())
        if iso is None:
            continue  # a printed date that is no calendar date (31 tháng 2): not a fill-in, not a date
        certainty = 0.95 if fill.confidence >= 0.5 else 0.8
        return Found(DatePlace(iso, place, fill, year), (ln,), certainty, ln.text[m.start() :].strip())
    return None


def find_date(zone: list[Line], lexicon: Lexicon) -> Found[DatePlace] | None:
    """The issuing place and date (``<place>, ngày D tháng M năm YYYY``) in the header zone; a template date
    line whose day/month are handwritten gives ``date=None`` with the signs in ``fill``."""
    template = _template_date(zone, lexicon)
    if template is not None:
        return template
    for pattern, certainty in ((_DATE_RE, 0.95), (_NUMERIC_DATE_RE, 0.7)):
        for ln in zone:
            for m in pattern.finditer(ln.folded):
                iso = _valid_date(
                    ln.text[m.start("d") : m.end("d")],
                    ln.text[m.start("m") : m.end("m")],
                    ln.text[m.start("y") : m.end("y")],
                )
                if iso and (pattern is _NUMERIC_DATE_RE or _dateline_context(ln, ln.text[: m.start()])):
                    place = _place_before(ln.text[: m.start()], lexicon)
                    return Found(DatePlace(iso, place), (ln,), certainty, ln.text[m.start() :].strip())
    return None


def _dateline_context(ln: Line, prefix: str) -> bool:
    """A header date follows ``<place>,`` or opens its line (column); ``Căn cứ Luật ... ngày ...`` does not."""
    before = prefix.rstrip()
    return not before or before.endswith(",") or ln.column == Column.RIGHT


def _place_before(prefix: str, lexicon: Lexicon) -> str | None:
    """The place name that ends ``prefix`` (``Số 15-NQ/TU Đà Nẵng,`` → ``Đà Nẵng``)."""
    code = _CODE_RE.search(fold(prefix))
    if code:
        prefix = prefix[code.end() :]
    words: list[str] = []
    for tok in reversed(prefix.split()):
        core = tok.strip(",.;:-_\u2013")
        if not core or any(ch.isdigit() or ch == "/" for ch in core) or not core[0].isalpha():
            break
        if core.isupper() and len(core) > 1 and words and not all(w.isupper() for w in words):
            break  # a stamp word ("ĐẾN") before a mixed-case place
        words.insert(0, tok if tok.endswith(".") and len(core) <= 3 else core)
        if len(words) >= 6:
            break
    place = " ".join(words).strip(" ,")
    return fix_place_names(lexicon.fix(place)) if place else None


# ------------------------------------------------------------------ organ


def _is_organ_text(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    visible = sum(not ch.isspace() for ch in text)
    return (
        letters >= 3
        and letters >= 0.7 * visible
        and upper_ratio(text) >= 0.75
        and not _NATIONAL_RE.search(fold(text))
        and not _mark_only(text)
    )


def _mark_only(text: str) -> bool:
    words = _letter_words(text)
    return bool(words) and _parse_marks([w for w, _ in words])[1] == len(words)


def _organ_candidates(page: PageLines, anchor: Line | None) -> list[Line]:
    if page.has_boxes:
        limit = anchor.yc - 0.5 * page.line_height if anchor else 0.15 * page.height
        lines = [ln for ln in page.lines if ln.yc < limit and ln.xc < page.width / 2]
        lines = [ln for ln in page.by_y(lines) if _is_organ_text(ln.text)]
        if lines:
            tallest = max(ln.height for ln in lines)
            axis = lines[0].xc  # organ lines are centred on one axis; stamps are not
            lines = [
                ln for ln in lines if ln.height >= 0.55 * tallest and abs(ln.xc - axis) <= _AXIS_SLACK * page.width
            ]
        return lines
    stop = anchor.order if anchor else 4
    return [ln for ln in page.lines[:stop] if ln.column != Column.RIGHT and _is_organ_text(ln.text)]


def find_organ_lines(page: PageLines, anchor: Line | None, lexicon: Lexicon) -> Found[list[str]] | None:
    """The issuing organ's header lines (left block above the number), as printed."""
    lines = _organ_candidates(page, anchor)[:3]
    if not lines:
        return None
    texts = [canonical_words(fix_place_names(lexicon.fix(re.sub(r"^[\W_]+|[\W_]+$", "", ln.text)))) for ln in lines]
    return Found([t for t in texts if t], tuple(lines), 0.85)


def _capital(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def organ_case(text: str) -> str:
    """Upper-case organ text in name case: ``VĂN PHÒNG THÀNH ỦY ĐÀ NẴNG`` → ``Văn phòng Thành ủy Đà Nẵng``."""
    words = text.split()
    out: list[str] = []
    place_mode = False
    for i, word in enumerate(words):
        pair = f"{fold(words[i - 1])} {fold(word)}" if i else ""
        if word.upper() in ACRONYMS:
            out.append(word.upper())
        elif pair in COMMITTEE_WORDS:
            out[-1] = _capital(words[i - 1])
            out.append(word.lower())
            place_mode = True
        elif place_mode or i == 0:
            out.append(_capital(word))
        elif fold(word) in ADMIN_LEVELS or pair in ADMIN_LEVELS:
            out.append(word.lower())
            place_mode = fold(word) != "thanh"
        elif i == 1 and fold(words[0]) in {"ban", "so", "bo", "cuc", "vu", "vien", "hoi", "truong"}:
            out.append(_capital(word))
        else:
            out.append(word.lower())
    return " ".join(out)


def _strip_admin_level(text: str) -> str:
    folded = fold(text)
    for level in sorted(ADMIN_LEVELS, key=len, reverse=True):
        if folded.startswith(level + " "):
            return text[len(level) + 1 :]
    return text


def compose_organ_name(lines: list[str]) -> str:
    """The organ's name from its header lines (superior body on top, issuing body below)."""
    party = fold(lines[0]).startswith("dang bo ") or any(w in fold(" ".join(lines)) for w in COMMITTEE_WORDS)
    state = None if party else compose_state_organ(lines)
    if state is not None:
        return state
    if len(lines) == 1:
        return organ_case(lines[0])
    top, rest = lines[0], " ".join(lines[1:])
    if fold(top).startswith("dang bo "):
        if fold(rest) in COMMITTEE_WORDS:  # "ĐẢNG BỘ THÀNH PHỐ ĐÀ NẴNG" / "THÀNH ỦY"
            rest = f"{rest} {_strip_admin_level(top[len('dang bo ') :])}"
        return organ_case(rest)
    if any(fold(lines[1]).startswith(level + " ") for level in ADMIN_LEVELS):
        return organ_case(" ".join(lines))  # "ỦY BAN NHÂN DÂN" / "TỈNH QUẢNG NAM"
    return organ_case(" ".join(reversed(lines)))  # "THÀNH ỦY ĐÀ NẴNG" / "VĂN PHÒNG"


# ------------------------------------------------------------------ marks


def _letter_words(text: str) -> list[tuple[str, str]]:
    """(folded, original) letter-only words of ``text``; ``-`` and ``/`` separate words (``KHẨN/MẬT``, ``SAO-MẬT``)."""
    out = []
    for tok in re.split(r"[\s\-\u2010-\u2015/]+", text):
        core = "".join(ch for ch in tok if ch.isalpha())
        if core:
            out.append((fold(core), core))
    return out


def _parse_marks(words: list[str]) -> tuple[list[tuple[int, str, str]], int]:
    """Marks at word positions: [(index, kind, value)] and how many words they cover."""
    found: list[tuple[int, str, str]] = []
    covered, i = 0, 0
    phrases = [(p.split(), "classification", v) for p, v in CLASSIFICATION_MARKS]
    phrases += [(p.split(), "urgency", v) for p, v in URGENCY_MARKS]
    phrases.sort(key=lambda x: -len(x[0]))
    while i < len(words):
        for parts, kind, value in phrases:
            if words[i : i + len(parts)] == parts:
                found.append((i, kind, value))
                covered += len(parts)
                i += len(parts)
                break
        else:
            i += 1
    return found, covered


def _line_marks(ln: Line, in_zone: bool) -> list[tuple[str, str, float]]:
    """(kind, value, certainty) of the marks printed on ``ln``."""
    words = _letter_words(ln.text)
    if not words:
        return []
    marks, covered = _parse_marks([w for w, _ in words])
    if not marks and in_zone:
        fuzzy = _fuzzy_classification(words)
        return [("classification", fuzzy, 0.5)] if fuzzy else []
    out = []
    for i, kind, found_value in marks:
        value = _upgrade_secrecy(words, i) if found_value == "Mật" and len(words) <= 3 else found_value
        word = words[i][1] if kind == "urgency" or found_value == "Mật" else words[i + 1][1]
        if not word.isupper():
            continue
        if covered == len(words):
            out.append((kind, value, 0.95))
        elif in_zone and len(words) <= 6 and not _has_mark_neighbour(words, i, len(found_value.split())):
            out.append((kind, value, 0.7))
    return out


def _upgrade_secrecy(words: list[tuple[str, str]], i: int) -> str:
    """``MẬT`` after a misread ``TỐI``/``TUYỆT`` (``[rồi MẬT|``): the higher level, never the lower."""
    prev = words[i - 1][0] if i > 0 else ""
    for phrase, value in CLASSIFICATION_MARKS[:2]:
        if prev and levenshtein(prev, phrase.split()[0]) <= 1:
            return value
    return "Mật"


def _fuzzy_classification(words: list[tuple[str, str]]) -> str | None:
    """A secrecy stamp misread by one letter (``MẶI``, ``TỐI MẠI``): a short upper-case line close to a mark.

    Errs on the side of flagging: a missed secrecy mark is worse than a false one."""
    if not 1 <= len(words) <= 2 or not all(orig.isupper() for _, orig in words):
        return None
    folded = " ".join(w for w, _ in words)
    for phrase, value in CLASSIFICATION_MARKS:
        if len(phrase) >= 3 and len(folded) >= 3 and levenshtein(folded, phrase) <= 1:
            return value
    return None


def _has_mark_neighbour(words: list[tuple[str, str]], i: int, n: int) -> bool:
    before = words[i - 1][0] if i > 0 else ""
    after = words[i + n][0] if i + n < len(words) else ""
    return before in MARK_NEIGHBOURS or after in MARK_NEIGHBOURS


def find_marks(pages: list[PageLines]) -> dict[str, Found[str]]:
    """Secrecy (any page, stand-alone stamp) and urgency (page 1) marks; the strongest of each kind."""
    best: dict[str, Found[str]] = {}
    ranks = {v: r for r, (_, v) in enumerate(CLASSIFICATION_MARKS + URGENCY_MARKS)}
    for idx, page in enumerate(pages):
        zone = set(header_zone(page)) if idx == 0 else set()
        for ln in page.lines:
            for kind, value, certainty in _line_marks(ln, ln in zone):
                if idx > 0 and (kind == "urgency" or certainty < 0.9):
                    continue
                certainty = certainty if idx == 0 else 0.8
                old = best.get(kind)
                if old is None or ranks[value] < ranks[old.value]:
                    best[kind] = Found(value, (ln,), certainty)
    return best
