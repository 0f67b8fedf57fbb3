"""The issuing organ's name composed from its header lines, as Nghị định 30/2020 and Thông tư 05/2025 write it.

A state header prints the superior body on top and the issuing organ below (``UBND THÀNH PHỐ ĐÀ NẴNG`` / ``SỞ GIÁO
DỤC VÀ ĐÀO TẠO``). The issuing line is the organ; a local-government superior (Ủy ban / Hội đồng nhân dân) only
gives the place (``Sở Giáo dục và Đào tạo thành phố Đà Nẵng``), a ministry gives nothing (a unit under a ministry
is named alone), any other superior follows the organ's name (``Phòng ... Công an TP Đà Nẵng``).

Letter case by the rule for names of organs: the organ-type word(s) and the first word of the organ's own name
(its field, or each field joined by ``và`` / ``-``) are capitalised, administrative levels are lower case, and
the place name after a level keeps capitals on every word; abbreviations stay upper case.
"""

from __future__ import annotations

from schemas.text import fold

from .vocab import ACRONYMS, ADMIN_LEVELS

# Organ-type heads as written (longest first when matching). A head ends where the organ's own name begins.
ORGAN_HEADS: tuple[str, ...] = (
    "Ủy ban nhân dân", "Hội đồng nhân dân", "Tòa án nhân dân", "Viện kiểm sát nhân dân", "Kho bạc Nhà nước",
    "Trường Đại học", "Trường Cao đẳng", "Trường Trung học phổ thông", "Trường Trung học cơ sở", "Học viện",
    "Đại học", "Tổng cục", "Chi cục", "Trung tâm", "Văn phòng", "Công an", "Thanh tra", "Ủy ban", "Hội đồng",
    "Sở", "Bộ", "Phòng", "Ban", "Cục", "Vụ", "Viện", "Trường", "Đoàn", "Hội",
)
_HEADS = sorted(((fold(h).split(), h) for h in ORGAN_HEADS), key=lambda x: -len(x[0]))
LOCAL_GOVERNMENT = ("uy ban nhan dan", "hoi dong nhan dan", "ubnd", "hdnd")
_LEVEL_ABBREVIATIONS = ("tp", "tp.")
# Misread words of the fixed vocabulary (``THÀNH PHÓ``, ``ỦY BẠN``) are written as the vocabulary spells them.
# Phrases only: a single folded word is ambiguous ("quan" is quận and quản).
_CANONICAL = ("thành phố", "thị xã", "thị trấn", "ủy ban nhân dân", "hội đồng nhân dân", "giáo dục", "đào tạo")
_CANON = sorted(((fold(c).split(), c.split()) for c in _CANONICAL), key=lambda x: -len(x[0]))


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def _in_case(form: str, original: str) -> str:
    if original.isupper():
        return form.upper()
    return _cap(form) if original[:1].isupper() else form


def canonical_words(text: str) -> str:
    """``text`` with misread marks in the fixed organ vocabulary restored (``THÀNH PHÓ`` → ``THÀNH PHỐ``)."""
    words = text.split()
    keys = [fold(w) for w in words]
    i = 0
    while i < len(words):
        for key, forms in _CANON:
            if keys[i : i + len(key)] == key:
                words[i : i + len(key)] = [_in_case(f, w) for f, w in zip(forms, words[i : i + len(key)], strict=True)]
                i += len(key) - 1
                break
        i += 1
    return " ".join(words)


def _is_level(key: str) -> bool:
    return key in _LEVEL_ABBREVIATIONS or key in ADMIN_LEVELS


def name_case(text: str, *, named: bool = True) -> str:
    """An upper-case state organ line in name case: ``SỞ GIÁO DỤC VÀ ĐÀO TẠO`` → ``Sở Giáo dục và Đào tạo``;
    ``named=False``: ``text`` is a place (``THÀNH PHỐ ĐÀ NẴNG`` → ``thành phố Đà Nẵng``)."""
    words = text.split()
    keys = [fold(w) for w in words]
    out: list[str] = []
    head = next((h for key, h in _HEADS if keys[: len(key)] == key), None)
    if head is not None:
        out = head.split()
    place, start_name = False, named
    i = len(out)
    while i < len(words):
        word, key = words[i], keys[i]
        pair = f"{key} {keys[i + 1]}" if i + 1 < len(words) else ""
        if word.upper() in ACRONYMS or (word.isupper() and key in _LEVEL_ABBREVIATIONS):
            out.append(word.upper())
            place = place or key in _LEVEL_ABBREVIATIONS
        elif place or start_name:  # a place name, or the first word of a field ("và Xã hội": no level here)
            out.append(_cap(word))
        elif pair in ADMIN_LEVELS:  # "thành phố", "thị xã": the place starts after the two words
            out += [word.lower(), words[i + 1].lower()]
            place, i = True, i + 1
        elif key in ADMIN_LEVELS:
            out.append(word.lower())
            place = True
        else:
            out.append(word.lower())
        start_name = key in ("va", "-", "\u2013")
        i += 1
    return " ".join(out)


def compose_state_organ(lines: list[str]) -> str | None:
    """The organ's name from state header lines (superior on top), or None when they are not a state pair."""
    if len(lines) < 2:
        return None
    top, own = canonical_words(lines[0]), canonical_words(" ".join(lines[1:]))
    top_key, own_key = fold(top), fold(own)
    if any(own_key.startswith(level + " ") for level in ADMIN_LEVELS):
        return f"{name_case(top)} {_place(own)}"  # "ỦY BAN NHÂN DÂN" / "THÀNH PHỐ ĐÀ NẴNG"
    body = next((b for b in LOCAL_GOVERNMENT if top_key.startswith(b + " ")), None)
    if body is not None:
        place = " ".join(top.split()[len(body.split()) :])
        if _is_level(fold(place).split(" ")[0]) or any(fold(place).startswith(lv + " ") for lv in ADMIN_LEVELS):
            return f"{name_case(own)} {_place(place)}"  # the superior gives the place
    if top_key.startswith("bo "):
        return name_case(own)  # a unit directly under a ministry is named alone
    if any(top_key.split()[: len(key)] == key for key, _ in _HEADS):
        return f"{name_case(own)} {name_case(top)}"  # "Phòng ..." of "Công an TP Đà Nẵng"
    return None


def _place(text: str) -> str:
    """``THÀNH PHỐ ĐÀ NẴNG`` → ``thành phố Đà Nẵng`` (``TP`` written out as the level it abbreviates)."""
    words = text.split()
    if words and fold(words[0]).rstrip(".") == "tp":
        words = ["thành", "phố", *words[1:]]
    return name_case(" ".join(words), named=False)
