"""Drop the lines the page pass read out of seal ink, signatures and specks; restore list dashes.

On real scans tesseract turns a seal's rim, its lettering's residue and the strokes of a signature into short
"lines" of garbage (``TY Enx TY ề x``, ``B_à``, ``1K ——``) and misreads a list's leading dash (``: Tiếp tục``,
``_—_“ Làm``). This stage works on the words of the page, before the text is put in reading order, and decides
from the words alone, with no word list:

* a word is *plausible* when each of its parts (split at ``- / . : ,``) is a number, an upper-case abbreviation or
  a well-formed Vietnamese syllable: an optional initial consonant (``b ch gh gi kh ngh nh ph qu th tr``...), one
  to three vowels, an optional final (``c ch m n ng nh p t``), at most one tone mark, and one letter case pattern
  (``lower``, ``Capitalised`` or ``UPPER``);
* a piece of a line (split at column gaps, as ``pipeline.reading_order`` does) is kept when it has an *anchor*: a
  plausible word of two or more letters or digits (or a number) read with confidence ``ANCHOR_CONFIDENCE`` or
  more, or a long one (``LONG_WORD``) read with ``LONG_WORD_CONFIDENCE``, and not ``TALL_FACTOR`` times taller
  than the page's median word (the strokes of a signature read as ``MS``); a piece with
  anchors is still dropped when they are under ``ANCHOR_SHARE`` of its letters and its mean confidence is under
  ``LOW_MEAN_CONFIDENCE``;
* a piece that lies wholly inside a seal (its box within the disc of the seal's box, given by the caller) is
  dropped unless all its words are anchors and read with a mean confidence of ``SEAL_KEEP_CONFIDENCE``: a seal's
  own lettering is never page text (a signer's name printed over a seal reaches beyond its disc or reads surely);
* a piece left of the text's middle starting with a punctuation-only word made of dash-like marks (``_ — ~ :``)
  before a capitalised word is a list item: that word becomes ``-``; elsewhere (a signature title centred on the
  right) such a leading mark is dropped; so is a lone speck after a line (``HIỆU TRƯỞNG .``).

A piece reading like a secrecy or urgency mark (``MẬT``, ``KHẨN``, ``HỎA TỐC``, folded) is never dropped: the
secrecy-stamp reader (``flows.stamps``) reads the page's words too. Pure: words in, words out; the caller
rebuilds the text (``pipeline.reading_order.order_page_text``).
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence

from pipeline.metadata.fuzzy import levenshtein
from pipeline.reading_order import line_pieces
from schemas.ocr import OcrPage, OcrWord
from schemas.text import fold

Box = tuple[int, int, int, int]

ANCHOR_CONFIDENCE = 0.5  # a plausible word read at least this surely anchors its line as text
LONG_WORD = 4  # letters and digits of a long word...
LONG_WORD_CONFIDENCE = 0.25  # ...an anchor from this confidence on
ANCHOR_SHARE = 0.34  # ...but anchors under this share of the letters and digits of a piece...
LOW_MEAN_CONFIDENCE = 0.5  # ...read with a mean confidence under this do not save it
SEAL_KEEP_CONFIDENCE = 0.9  # a piece wholly inside a seal is kept only when read at least this surely
SEAL_MARGIN = 0.05  # share of the seal's size a piece may stick out of it and still be "inside"
TALL_FACTOR = 2.0  # a word taller than this many median word heights is no anchor (signature strokes)
MAX_ABBREVIATION = 10  # letters of an upper-case abbreviation (``ĐHĐL``, ``SGDĐT``)
LATIN_WORD = 5  # letters of a foreign word (``Website``, ``Email``, ``Zalo``) that anchors its line...
LATIN_CONFIDENCE = 0.75  # ...when read at least this surely in one letter case pattern
FRAGMENT_FACTOR = 0.35  # words under this share of the median word height ending a piece: a neighbour's strip

_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # grave, acute, tilde, hook above, dot below
_INITIAL = "(?:ngh|ng|gh|gi|kh|nh|ph|th|tr|ch|qu|[bcdđghklmnprstvx])"
_VOWELS = "[aăâeêioôơuưy]"
_FINAL = "(?:ch|nh|ng|[cmnpt])"
_SYLLABLE = re.compile(f"{_INITIAL}?{_VOWELS}{{1,3}}{_FINAL}?")
_NUMBER = re.compile(r"\d+(?:h\d*|[a-zđ]{0,2}|%)?")  # 2025, 8h00, 12h, 1a, 80%
_CODE = re.compile(r"[A-ZĐ]{1,8}\d{1,6}")  # PA83, A2
_MARKS = re.compile(r"\b(mat|khan|hoa toc)\b")  # folded: MẬT, KHẨN, HỎA TỐC (and look-alikes)
_MARK_PHRASES = ("mat", "toi mat", "tuyet mat", "khan", "thuong khan", "hoa toc")
_REFERENCE = re.compile(r"\d+\s*[-/]\s*[A-ZĐ]{2,}|\b\d{1,2}/\d{1,2}/\d{4}\b")  # 15-NQ/TU, 123/QĐ-UBND, 12/3/2020
NAME_CONFIDENCE = 0.3  # mean confidence from which capitalised syllables are kept as a name
_ADDRESS = re.compile(r"(?:https?://)?[\w.+-]+(?:@[\w-]+)?(?:\.[a-z]{2,})+(?:/\S*)?")  # web or mail address
_DASH_MARKS = set("_-—–~:;=")
_TRAIL_MARKS = set("_.`'^~|¬‹›°“”\"")  # a lone word of these after a line is a speck
_LEAD_MARKS = _DASH_MARKS | set("`'‘’“”\".,^¬|")
_SPLIT = re.compile(r"[-/.:,–—]+")
_EDGE_PUNCT = "()[]{}\"'“”‘’.,;:!?…*«»<>`´^¬|_~=+–—-"


def _untoned(part: str) -> tuple[str, int]:
    """The part lower-cased without its tone marks (vowel shapes kept), and how many tone marks it had."""
    decomposed = unicodedata.normalize("NFD", part.lower())
    tones = sum(ch in _TONES for ch in decomposed)
    bare = "".join(ch for ch in decomposed if ch not in _TONES)
    return unicodedata.normalize("NFC", bare), tones


def _one_case(part: str) -> bool:
    letters = [ch for ch in part if ch.isalpha()]
    if not letters:
        return True
    return all(ch.islower() for ch in letters[1:]) or all(ch.isupper() for ch in letters)


def is_syllable(part: str) -> bool:
    """A well-formed Vietnamese syllable (any letter case pattern ``lower``, ``Capitalised``, ``UPPER``)."""
    if not part or not part.isalpha() or not _one_case(part):
        return False
    bare, tones = _untoned(part)
    return tones <= 1 and _SYLLABLE.fullmatch(bare) is not None


def _two_syllables(part: str) -> bool:
    """Two syllables written together (``Noinhận``: a space lost by the engine)."""
    return any(is_syllable(part[:i]) and is_syllable(part[i:].lower()) for i in range(1, len(part)))


def _part_ok(part: str) -> bool:
    if part.isdigit() or _NUMBER.fullmatch(part) or _CODE.fullmatch(part):
        return True
    if len(part) >= 2 and 2 * sum(ch.isdigit() or ch == "%" for ch in part) >= len(part):
        return True  # a number with a misread digit (2U21) is still a number
    if part.isalpha() and part.isupper() and 2 <= len(part) <= MAX_ABBREVIATION:
        return True
    return is_syllable(part) or _two_syllables(part)


def _core(text: str) -> str:
    return text.strip(_EDGE_PUNCT)


def alnum_count(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def is_plausible(text: str) -> bool:
    """Each part of the word (split at ``- / . : ,``) holding letters or digits is a number, an abbreviation or a
    Vietnamese syllable, and they hold at least half of its letters and digits."""
    core = _core(text)
    if _ADDRESS.fullmatch(core):
        return True
    parts = [p for p in _SPLIT.split(core) if p]
    if not parts:
        return False
    good = sum(len(p) for p in parts if _part_ok(p))
    return good > 0 and good >= 0.5 * alnum_count(core)


def _latin_word(word: OcrWord) -> bool:
    """A foreign word of ``LATIN_WORD`` or more plain letters in one case pattern, read surely (``Website``)."""
    core = _core(word.text).rstrip(";,.:")
    return (word.confidence >= LATIN_CONFIDENCE and len(core) >= LATIN_WORD and core.isascii() and core.isalpha()
            and _one_case(core))


def _is_anchor(word: OcrWord, tall: float = float("inf")) -> bool:
    """A plausible word read surely: two or more letters or digits (or a number: a page number), or a long word
    (``LONG_WORD`` letters and digits, such as a document number) read fairly surely, or a foreign word read
    surely (``_latin_word``); never a word taller than ``tall`` pixels (a signature's strokes read as letters)."""
    if word.box[3] - word.box[1] <= tall and _latin_word(word):
        return True
    chars = alnum_count(word.text)
    if word.confidence < LONG_WORD_CONFIDENCE or word.box[3] - word.box[1] > tall or not is_plausible(word.text):
        return False
    if chars >= LONG_WORD:
        return True
    return word.confidence >= ANCHOR_CONFIDENCE and (chars >= 2 or _core(word.text).isdigit())


def is_mark_like(words: Sequence[OcrWord]) -> bool:
    """The piece holds a secrecy or urgency mark, read exactly or with one letter wrong (``MẶI``, ``TỐI MẠI``,
    ``KHẢN``): capitals that fold to within one edit of ``MẬT``, ``TỐI MẬT``, ``TUYỆT MẬT``, ``KHẨN``, ``THƯỢNG
    KHẨN`` or ``HỎA TỐC``. Such a piece is never dropped: the secrecy reader decides (fail closed)."""
    if _MARKS.search(fold(" ".join(w.text for w in words))):
        return True
    tokens = [_core(w.text) for w in words]
    for size in (1, 2):
        for k in range(len(tokens) - size + 1):
            window = tokens[k : k + size]
            if not all(t and t.isalpha() and t.isupper() for t in window) or sum(map(len, window)) < 2:
                continue
            folded = fold(" ".join(window))
            if any(levenshtein(folded, mark) <= 1 for mark in _MARK_PHRASES):
                return True
    return False


def _dated_or_numbered(words: Sequence[OcrWord]) -> bool:
    """A number-symbol (``15-NQ/TU``, ``123/QĐ-UBND``) or a date (``12/3/2020``) is page text however read."""
    return _REFERENCE.search(" ".join(w.text for w in words)) is not None


def _name_like(words: Sequence[OcrWord], tall: float) -> bool:
    """Two or more capitalised Vietnamese syllables of two letters or more, not taller than ``tall`` pixels
    (signature strokes), fairly read: a name (``Lê Văn Ba``)."""
    cores = [_core(w.text) for w in words]
    if len(words) < 2 or any(w.box[3] - w.box[1] > tall for w in words):
        return False
    return all(len(c) >= 2 and c[0].isupper() and is_plausible(c) for c in cores) and (
        statistics.fmean(w.confidence for w in words) >= NAME_CONFIDENCE)


def is_junk(words: Sequence[OcrWord], tall: float = float("inf")) -> bool:
    """A piece of a line read from ink that is not text (seal, signature, specks): no anchor word, or anchors
    that are a small share of a poorly read piece."""
    if len(words) == 1 and words[0].text == "*":
        return False  # the star under a Party document's issuing body
    if is_mark_like(words) or _dated_or_numbered(words) or _name_like(words, tall):
        return False  # a secrecy or urgency mark, however badly read, is left to the stamp reader
    anchors = [w for w in words if _is_anchor(w, tall)]
    if not anchors:
        return True
    total = sum(alnum_count(w.text) for w in words)
    anchored = sum(alnum_count(w.text) for w in anchors)
    mean = statistics.fmean(w.confidence for w in words)
    return anchored < ANCHOR_SHARE * total and mean < LOW_MEAN_CONFIDENCE


def _box(words: Sequence[OcrWord]) -> Box:
    return (min(w.box[0] for w in words), min(w.box[1] for w in words),
            max(w.box[2] for w in words), max(w.box[3] for w in words))


def _inside(box: Box, seal: Box) -> bool:
    """``box`` (x0, y0, x1, y1) within the disc inscribed in ``seal`` (x, y, w, h), up to ``SEAL_MARGIN``."""
    x, y, w, h = seal
    cx, cy, r = x + w / 2, y + h / 2, (1 + SEAL_MARGIN) * min(w, h) / 2
    return all((px - cx) ** 2 + (py - cy) ** 2 <= r * r for px in (box[0], box[2]) for py in (box[1], box[3]))


def _in_seal(words: Sequence[OcrWord], seals: Sequence[Box]) -> bool:
    """A piece wholly inside a seal's disc that is not all anchor words read surely: the seal's own lettering
    (never a piece that reads like a secrecy or urgency mark)."""
    box = _box(words)
    if is_mark_like(words) or not any(_inside(box, seal) for seal in seals):
        return False
    sure = all(_is_anchor(w) for w in words if alnum_count(w.text))
    return not sure or statistics.fmean(w.confidence for w in words) < SEAL_KEEP_CONFIDENCE


def _leading_mark(words: Sequence[OcrWord]) -> bool:
    """The piece starts with a punctuation-only word of dash-like marks, before a word with a capital letter."""
    if len(words) < 2 or words[0].text == "-" or alnum_count(words[0].text):
        return False
    nxt = _core(words[1].text)
    return set(words[0].text) <= _LEAD_MARKS and bool(nxt) and nxt[0].isupper()


def _text_middle(page: OcrPage, pieces: list[tuple[OcrWord, ...]]) -> float:
    lefts = sorted(p[0].box[0] for p in pieces)
    rights = sorted(p[-1].box[2] for p in pieces)
    if not lefts:
        return page.width / 2
    return (lefts[len(lefts) // 10] + rights[len(rights) * 9 // 10]) / 2


def _fix_marks(words: Sequence[OcrWord], middle: float, remove: set[int], replace: dict[int, OcrWord]) -> int:
    """Mark a piece's trailing speck for removal and its leading dash-like mark for a list dash (left of
    ``middle``) or removal; return how many marks were fixed."""
    fixed = 0
    if len(words) >= 2 and set(words[-1].text) <= _TRAIL_MARKS:
        remove.add(id(words[-1]))  # a speck after the line (``HIỆU TRƯỞNG .``, ``ĐÀ NẴNG _``)
        fixed += 1
    if _leading_mark(words):
        first = words[0]
        if first.box[0] < middle and set(first.text) & _DASH_MARKS:
            replace[id(first)] = first.model_copy(update={"text": "-"})
        else:
            remove.add(id(first))
        fixed += 1
    return fixed


def _fragment_tail(words: tuple[OcrWord, ...], median: float) -> int:
    """Where a piece's tail of tiny words begins (``len(words)``: none): the top or bottom strip of the next line
    fused into this one by the engine (``Website; - xỉ na x7at``: letters a third of a word's height). The tail
    holds a word with letters or digits and the piece keeps a word of normal height; a mark is never a tail."""
    cut = len(words)
    while cut > 1 and words[cut - 1].box[3] - words[cut - 1].box[1] < FRAGMENT_FACTOR * median:
        cut -= 1
    tail, head = words[cut:], words[:cut]
    if not any(alnum_count(w.text) for w in tail) or is_mark_like(tail):
        return len(words)
    if all(w.box[3] - w.box[1] < FRAGMENT_FACTOR * median for w in head):
        return len(words)
    return cut


def _split_fragments(pieces: list[tuple[OcrWord, ...]], median: float) -> list[tuple[OcrWord, ...]]:
    """The pieces with fused tails of tiny words cut off as pieces of their own (judged, and dropped, alone)."""
    out: list[tuple[OcrWord, ...]] = []
    for words in pieces:
        cut = _fragment_tail(words, median)
        out.extend([words[:cut], words[cut:]] if cut < len(words) else [words])
    return out


def clean_page(page: OcrPage, seals: Sequence[Box] = ()) -> tuple[OcrPage, list[str], int]:
    """``page`` without its junk pieces and with its list dashes restored.

    ``seals``: boxes (x, y, w, h) of seals found on the page. Returns the page (text unchanged: the caller rebuilds
    it in reading order), the texts of the pieces dropped, and how many leading marks were fixed."""
    pieces = line_pieces(page)
    if not pieces:
        return page, [], 0
    middle = _text_middle(page, pieces)
    heights = [w.box[3] - w.box[1] for w in page.words if alnum_count(w.text) >= 2]
    median = statistics.median(heights) if heights else None
    tall = TALL_FACTOR * median if median else float("inf")
    if median:
        pieces = _split_fragments(pieces, median)
    dropped: list[str] = []
    remove: set[int] = set()
    replace: dict[int, OcrWord] = {}
    fixed = 0
    for words in pieces:
        if is_junk(words, tall) or _in_seal(words, seals):
            dropped.append(" ".join(w.text for w in words))
            remove.update(id(w) for w in words)
        else:
            fixed += _fix_marks(words, middle, remove, replace)
    if not remove and not replace:
        return page, [], 0
    kept = [replace.get(id(w), w) for w in page.words if id(w) not in remove]
    confidence = statistics.fmean(w.confidence for w in kept) if kept else 0.0
    return page.model_copy(update={"words": kept, "confidence": confidence}), dropped, fixed


def drop_junk_lines(page: OcrPage, seals: Sequence[Box] = ()) -> tuple[OcrPage, list[str]]:
    """``clean_page`` without the count of fixed marks."""
    cleaned, dropped, _ = clean_page(page, seals)
    return cleaned, dropped
