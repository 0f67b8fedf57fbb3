"""Vietnamese syllables as the language correction sees them (``pipeline.language``): one spelling per syllable.

The same syllable is written with its tone mark in two places in a few open rhymes (``hòa``/``hoà``,
``thủy``/``thuỷ``): :func:`canonical` puts every tone where the classic rule does (``hòa``, ``thủy``, the form
most administrative text uses), so the lexicon and the OCR words compare equal. :func:`skeleton` is a syllable
without any diacritic and with ``đ`` as ``d``: the letters an OCR engine rarely confuses, while it often drops or
swaps the marks over them. A word's case (``ALL CAPS``, ``Capitalised``, lower) is kept apart and put back.
"""

from __future__ import annotations

import unicodedata

TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng (combining)
_MARKS = TONES | frozenset("\u0302\u0306\u031b")  # tones, circumflex, breve, horn
_VOWELS = frozenset("aăâeêioôơuưy")
_MARKED = frozenset("ăâêôơư")  # vowels with a quality mark: the tone goes on them
_OPEN_FIRST = frozenset({"oa", "oe", "uy"})  # open rhymes whose tone sits on the first vowel (classic rule)


def is_letters(core: str) -> bool:
    """Only letters of the Vietnamese alphabet (no digit, no sign, no ``Š``): the words the correction may read."""
    return bool(core) and all(_is_letter(ch) for ch in core)


def _is_letter(ch: str) -> bool:
    if ch in "đĐ":
        return True
    decomposed = unicodedata.normalize("NFD", ch)
    return "a" <= decomposed[0].lower() <= "z" and all(mark in _MARKS for mark in decomposed[1:])


def skeleton(word: str) -> str:
    """Lower case, every diacritic removed, ``đ`` as ``d``."""
    decomposed = unicodedata.normalize("NFD", word.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _split_tone(syllable: str) -> tuple[str, str] | None:
    """The syllable without its tone (NFC) and the tone's combining mark ('' for none); None if two tones."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = [ch for ch in decomposed if ch in TONES]
    if len(tones) > 1:
        return None
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in TONES))
    return base, (tones[0] if tones else "")


def _glide_onset(base: str) -> int:
    """2 when ``base`` starts with ``qu`` or with ``gi`` before a vowel (their ``u``, ``i`` are the onset's)."""
    if len(base) > 2 and (base.startswith("qu") or (base.startswith("gi") and base[2] in _VOWELS)):
        return 2
    return 0


def _tone_position(base: str) -> int | None:
    """Index in ``base`` (toneless, lower, NFC) of the vowel that carries the tone; None without a vowel."""
    start = _glide_onset(base)
    positions = [i for i in range(start, len(base)) if base[i] in _VOWELS]
    if not positions and start:
        positions = [i for i in range(len(base)) if base[i] in _VOWELS][-1:]
    if not positions:
        return None
    first = positions[0]
    cluster = [first]
    for i in positions[1:]:
        if i != cluster[-1] + 1:
            break
        cluster.append(i)
    marked = [i for i in cluster if base[i] in _MARKED]
    if marked:
        return marked[-1]
    if len(cluster) == 1:
        return cluster[0]
    closed = cluster[-1] + 1 < len(base)
    rhyme = base[cluster[0]:cluster[-1] + 1]
    if closed:
        return cluster[-1]
    if rhyme in _OPEN_FIRST:
        return cluster[0]
    return cluster[-2]


def canonical(syllable: str) -> str | None:
    """The lower-case syllable with its tone on the vowel the classic rule names (NFC); None if not one syllable
    of letters (no vowel, two tones)."""
    split = _split_tone(syllable.lower())
    if split is None:
        return None
    base, tone = split
    position = _tone_position(base)
    if position is None:
        return None if tone else base
    if not tone:
        return base
    return unicodedata.normalize("NFC", base[:position + 1] + tone + base[position + 1:])


def case_of(core: str, upper_line: bool) -> str | None:
    """``upper``, ``title`` or ``lower``; None for mixed case (``SẠARS``, ``iPhone``): left alone."""
    if core.islower():
        return "lower"
    if core.isupper() and (len(core) > 1 or upper_line):
        return "upper"
    if core[0].isupper() and (len(core) == 1 or core[1:].islower()):
        return "title"
    return None


def with_case(syllable: str, case: str) -> str:
    if case == "upper":
        return syllable.upper()
    if case == "title":
        return syllable[:1].upper() + syllable[1:]
    return syllable


def parts(syllable: str) -> tuple[str, str, str]:
    """(onset, rhyme without tone, tone mark) of a canonical syllable: ``quyết`` → (``qu``, ``yêt``, acute)."""
    split = _split_tone(syllable)
    base, tone = split if split else (syllable, "")
    start = _glide_onset(base)
    while start < len(base) and base[start] not in _VOWELS:
        start += 1
    return base[:start], base[start:], tone


def change_cost(read: str, candidate: str) -> float:
    """How unlikely an OCR engine is to read ``candidate`` (canonical, same skeleton) as ``read``: a tone over a
    vowel with a circumflex, breve or horn is the usual slip; a tone over a plain vowel, another vowel mark, or
    ``đ`` for ``d`` are rarer (the weights are relative; ``pipeline.language`` sets the scale)."""
    read_base, read_tone = _split_tone(read) or (read, "")
    cand_base, cand_tone = _split_tone(candidate) or (candidate, "")
    cost = 0.0
    if ("đ" in read_base) != ("đ" in cand_base):
        cost += D_STROKE_COST
    marks = sum(a != b for a, b in zip(read_base.replace("đ", "d"), cand_base.replace("đ", "d"), strict=False))
    cost += QUALITY_COST * marks
    if read_tone != cand_tone:
        position = _tone_position(cand_base)
        over_marked = position is not None and cand_base[position] in _MARKED
        if over_marked:
            cost += MARKED_TONE_COST
        else:  # a speck read as a tone over a plain vowel is likelier than one tone read as another
            cost += PLAIN_TONE_COST if cand_tone else SPURIOUS_TONE_COST
    return cost


D_STROKE_COST = 0.6
QUALITY_COST = 0.8
MARKED_TONE_COST = 0.5
PLAIN_TONE_COST = 0.9
SPURIOUS_TONE_COST = 0.6
