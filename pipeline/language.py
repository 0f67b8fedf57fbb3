"""Vietnamese language correction of OCR words: tone and vowel marks a reader would never misread.

Tesseract's ``vie`` model drops or swaps diacritics, above all tones over circumflex vowels (``công bô`` for
``công bố``, ``kiêm định`` for ``kiểm định``, ``tố chức`` for ``tổ chức``). A reader puts them right from the words
around: a syllable forms a known word with its neighbours. This module does the same with a lexicon of
Vietnamese words (one and more syllables; built by :func:`build_lexicon` from the entries ``ocr_models.lexicon``
loads).

Words are read in runs: an engine line cut where two words stand more than :data:`MAX_GAP` word heights apart
(header columns), continued by the next line of its block (a word wraps: ``kiêm`` | ``tra``). Each run is segmented
into lexicon words by dynamic programming. A span of 2 to :data:`MAX_WORD` linked syllables (letters only, no
punctuation between them) may be read as any lexicon word with the same letters
(:func:`pipeline.language_syllable.skeleton`: diacritics and ``đ``/``d`` aside). A multi-syllable word earns
:data:`WORD_GAIN`; changing a syllable of the lexicon costs :data:`CHANGE_COST` plus what the change is
(:func:`pipeline.language_syllable.change_cost`: a tone over ``â ê ô ă ơ ư`` is cheap, a tone over a plain vowel
dear), a well-formed syllable no word uses :data:`UNLISTED_CHANGE_COST`, a non-syllable (``câp``, ``chât``)
:data:`INVALID_CHANGE_COST`; keeping a non-syllable costs :data:`INVALID_COST`. A non-syllable that forms no word
may become, alone, the syllable with its letters that :data:`DOMINANCE` times more lexicon words use than any other
(``câp`` → ``cấp``, not ``cập``). The best segmentation wins, ties go to fewer changes: the OCR reading is kept
unless a candidate is clearly better, and a syllable that already forms a known word with a neighbour keeps it
(``đầy đủ`` stays, ``cấp tỉnh`` does not become ``cấp tính``). Never changed: words with digits or signs (numbers,
notations such as ``TB-ĐHĐL``, ``QĐ/TU``), mixed case, people's names (a family name followed by capitalised words),
and a capitalised word inside a sentence or followed by another (a name: ``Đà Nẵng``, ``TP. Hà Nội``) unless the
lexicon word it is changed into lies on both its sides or goes on in lower case (``Mặt trận Tổ quốc``, ``Ban Tuyên
giáo``: names are capitalised throughout). Word confidence is not used: on real scans the misread marks came at the
engine's top confidence (0.92-0.96) as often as the right ones. Only the words' text changes; boxes and confidences
stay, so the page text, hOCR, metadata and search all get the corrected words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.language_syllable import canonical, case_of, change_cost, is_letters, parts, skeleton, with_case
from pipeline.metadata.vocab import SURNAME_FORMS
from schemas.ocr import OcrPage, OcrWord

MAX_WORD = 4  # longest lexicon word (syllables) matched against the OCR
WORD_GAIN = {2: 1.0, 3: 2.2, 4: 3.2}  # score of a lexicon word of this many syllables
CHANGE_COST = 0.3  # changing a syllable that is a word of the lexicon, plus ``language_syllable.change_cost``
UNLISTED_CHANGE_COST = 0.4  # changing one that is well formed but in no word of the lexicon
INVALID_CHANGE_COST = 0.1  # changing one that is not a Vietnamese syllable
INVALID_COST = 0.5  # keeping a syllable that is not Vietnamese
DOMINANCE = 3  # a non-syllable alone becomes the syllable used in this many times more words than any other
MAX_GAP = 3.0  # words further apart than this many word heights are not read together
# The commonest prepositions of administrative text and the rare syllables a slipped tone over their marked vowel
# turns them into (``đê`` dyke, ``vơi`` to ebb, ``đên``): such a syllable standing alone (no lexicon word with a
# neighbour: ``đê điều``, ``vời vợi`` keep theirs) before a word is the preposition. A reading that is itself a
# productive word (``đề`` in ``đề ra``) is never listed. FUNCTION_GAIN outweighs CHANGE_COST plus a tone
# over a marked vowel (0.8), nothing dearer.
FUNCTION_WORDS: dict[str, tuple[str, ...]] = {
    "để": ("đê", "đế", "đễ"),
    "về": ("vê", "vế", "vễ", "vệ"),
    "với": ("vơi", "vời", "vợi", "vởi", "vỡi"),
    "đến": ("đên", "đễn"),
    "được": ("đước",),
}
FUNCTION_GAIN = 0.9
FUNCTION_MAX_CHANGE = 0.5  # ``language_syllable.change_cost`` of a tone over a marked vowel
_SENTENCE_END = ".:;!?"
_BULLETS = frozenset({"-", "+", "–", "—", "•", "*", "·"})
_MARK_SYLLABLES = frozenset({"mat", "khan", "toc"})  # MẬT, KHẨN, HỎA TỐC (skeletons)
_MARK_MODIFIERS = frozenset({"toi", "tuyet", "thuong", "hoa"})  # TỐI / TUYỆT MẬT, THƯỢNG KHẨN, HỎA TỐC
_SURNAMES = frozenset(canonical(s) or s for s in SURNAME_FORMS)


@dataclass(frozen=True)
class Lexicon:
    """Syllables and multi-syllable words (canonical spellings), words indexed by their letters' skeleton."""

    syllables: frozenset[str]
    shapes: frozenset[tuple[str, str, str]]  # (onset, '', '') and ('', rhyme, tone) of every syllable
    words: Mapping[tuple[str, ...], tuple[tuple[str, ...], ...]]
    alone: Mapping[str, str]  # skeleton -> the syllable far more words use than any other with those letters
    provenance: Mapping[str, str] = field(default_factory=dict)


def build_lexicon(entries: Iterable[str], provenance: Mapping[str, str] | None = None) -> Lexicon:
    """The lexicon of ``entries`` (one word a line, syllables separated by spaces); entries with anything but
    letters are skipped."""
    syllables: set[str] = set()
    uses: Counter[str] = Counter()
    multi: set[tuple[str, ...]] = set()  # words of 2 to MAX_WORD syllables
    canon_of: dict[str, str | None] = {}  # the entries' pieces repeat: each distinct one is analysed once
    for entry in entries:
        pieces = entry.split()
        if not pieces:
            continue
        for piece in pieces:
            if piece not in canon_of:
                canon_of[piece] = canonical(piece) if is_letters(piece) else None
        canon = tuple(canon_of[p] for p in pieces)
        if any(c is None for c in canon):
            continue
        word = tuple(c for c in canon if c is not None)
        syllables.update(word)
        uses.update(word)
        if 2 <= len(word) <= MAX_WORD:
            multi.add(word)
    shapes: set[tuple[str, str, str]] = set()
    for syllable in syllables:
        onset, rhyme, tone = parts(syllable)
        shapes.update({(onset, "", ""), ("", rhyme, tone)})
    skeletons = {syllable: skeleton(syllable) for syllable in syllables}
    words = _by_skeletons(multi, skeletons)
    indexed = {key: tuple(sorted(found)) for key, found in words.items()}
    alone: dict[str, str] = {}
    for key, found in _by_skeleton(uses).items():
        ranked = sorted(found, key=lambda syllable: -uses[syllable])
        if len(ranked) == 1 or uses[ranked[0]] >= DOMINANCE * uses[ranked[1]]:
            alone[key] = ranked[0]
    return Lexicon(frozenset(syllables), frozenset(shapes), indexed, alone, dict(provenance or {}))


def _by_skeletons(words: Iterable[tuple[str, ...]], skeletons: Mapping[str, str]
                  ) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    """The words grouped under their syllables' skeletons."""
    grouped: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for word in words:
        grouped.setdefault(tuple(skeletons[s] for s in word), set()).add(word)
    return grouped


def _by_skeleton(syllables: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for syllable in syllables:
        grouped.setdefault(skeleton(syllable), []).append(syllable)
    return grouped


@dataclass
class _Token:
    lead: str
    core: str
    trail: str
    case: str | None  # None: not a word the correction may change
    canon: str | None
    valid: bool  # a syllable of the lexicon
    formed: bool = False  # a well-formed Vietnamese syllable (its onset and its rhyme with its tone occur)
    protected: bool = False  # a name, or a capitalised word inside a sentence
    inner_only: bool = False  # may change only inside a word that lies on both its sides


def _parse(text: str, upper_line: bool) -> _Token:
    start, end = 0, len(text)
    while start < end and not text[start].isalpha():
        start += 1
    while end > start and not text[end - 1].isalpha():
        end -= 1
    lead, core, trail = text[:start], text[start:end], text[end:]
    case = case_of(core, upper_line) if is_letters(core) else None
    canon = canonical(core) if case else None
    if canon is None:
        case = None
    return _Token(lead, core, trail, case, canon, False)


def _tokens(words: Sequence[OcrWord], lexicon: Lexicon) -> list[_Token]:
    cased = [w.text for w in words if any(ch.isalpha() for ch in w.text)]
    upper_line = bool(cased) and sum(t.isupper() for t in cased) > len(cased) / 2
    tokens = [_parse(w.text, upper_line) for w in words]
    for i, token in enumerate(tokens):
        token.valid = token.canon in lexicon.syllables
        if token.canon is not None:
            onset, rhyme, tone = parts(token.canon)
            token.formed = token.valid or ((onset, "", "") in lexicon.shapes and ("", rhyme, tone) in lexicon.shapes)
        previous = tokens[i - 1] if i else None
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        starts = previous is None or token.lead != "" or _ends_sentence(previous)
        named = following is not None and following.case == "title"  # "Đà Nẵng", also after "TP."
        token.inner_only = token.case == "title" and (named or not starts)
    _protect_names(tokens)
    _protect_marks(tokens)
    return tokens


def _protect_marks(tokens: list[_Token]) -> None:
    """Capitals that may be a secrecy or urgency mark (``MẬT``, ``TỐI MẬT``, ``KHẨN``, ``HỎA TỐC``, however read)
    stay as the engine read them: the secrecy reader judges the engine's reading, never a corrected one."""
    for i, token in enumerate(tokens):
        if token.case == "upper" and skeleton(token.core) in _MARK_SYLLABLES:
            token.protected = True
            if i and tokens[i - 1].case == "upper" and skeleton(tokens[i - 1].core) in _MARK_MODIFIERS:
                tokens[i - 1].protected = True


def _ends_sentence(token: _Token) -> bool:
    """The token ends a sentence (``.``, ``:``...) or is a list bullet (``-``, ``+``)."""
    if token.core == "" and token.lead + token.trail in _BULLETS:
        return True
    return token.trail != "" and token.trail[-1] in _SENTENCE_END


def _protect_names(tokens: list[_Token]) -> None:
    """A family name followed by capitalised words, and those words, are a person's name: left as read."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.case in ("title", "upper") and token.canon in _SURNAMES and not token.trail:
            j = i + 1
            while j < len(tokens) and tokens[j].case in ("title", "upper") and not tokens[j].lead:
                j += 1
                if tokens[j - 1].trail:
                    break
            if j > i + 1:
                for k in range(i, j):
                    tokens[k].protected = True
                i = j
                continue
        i += 1


def _linked(a: _Token, b: _Token) -> bool:
    return a.case is not None and b.case is not None and not a.trail and not b.lead


def _alone(token: _Token, lexicon: Lexicon) -> str | None:
    """A non-syllable (``câp``) with no word around it: the syllable with its letters that far more words use."""
    if token.case is None or token.formed or token.protected or token.inner_only:
        return None
    return lexicon.alone.get(skeleton(token.core))


def _function_word(tokens: list[_Token], index: int) -> str | None:
    """The function word (:data:`FUNCTION_WORDS`) a lower-case syllable followed by another word stands for: one of
    its listed slips, differing only by a tone over a marked vowel (``đê`` for ``để``, ``vơi`` for ``với``)."""
    token = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    if token.case != "lower" or token.protected or token.canon is None:
        return None
    if following is None or following.case != "lower" or token.trail or following.lead:
        return None  # a preposition is followed by the words it governs, never by punctuation
    for word, slips in FUNCTION_WORDS.items():
        if token.canon in slips and change_cost(token.canon, word) <= FUNCTION_MAX_CHANGE:
            return word
    return None


def _single_score(token: _Token) -> float:
    return -INVALID_COST if token.case is not None and not token.formed else 0.0


def _cost(token: _Token, syllable: str) -> float:
    """What changing the token to ``syllable`` costs, less the penalty it no longer pays if it was no syllable."""
    if token.valid and token.canon is not None:
        cost = CHANGE_COST + change_cost(token.canon, syllable)
    else:
        cost = UNLISTED_CHANGE_COST if token.formed else INVALID_CHANGE_COST - INVALID_COST
    return cost + 1e-6  # of two readings that score the same, the one with fewer changes


def _span_options(tokens: list[_Token], start: int, lexicon: Lexicon) -> list[tuple[int, float, tuple[str, ...]]]:
    """(end, score, reading) of every lexicon word that may be read over tokens[start:end]."""
    options: list[tuple[int, float, tuple[str, ...]]] = []
    end = start + 1
    while end < len(tokens) and end - start < MAX_WORD and _linked(tokens[end - 1], tokens[end]):
        end += 1
        span = tokens[start:end]
        key = tuple(skeleton(t.core) for t in span)
        for word in lexicon.words.get(key, ()):
            score = WORD_GAIN[len(word)]
            for k, (token, syllable) in enumerate(zip(span, word, strict=True)):
                if syllable == token.canon:
                    continue
                inner = 0 < k < len(span) - 1
                common = k == 0 and all(t.case == "lower" for t in span[1:])  # "Tổ quốc", "Tuyên giáo"
                if token.protected or (token.inner_only and not (inner or common)):
                    break
                score -= _cost(token, syllable)
            else:
                options.append((end, score, word))
    return options


def _best_reading(tokens: list[_Token], lexicon: Lexicon) -> list[str | None]:
    """Per token, the canonical syllable of the best segmentation (None: as read)."""
    n = len(tokens)
    best: list[float] = [0.0] + [float("-inf")] * n
    back: list[tuple[int, tuple[str, ...] | None]] = [(0, None)] * (n + 1)
    for start in range(n):
        if best[start] == float("-inf"):
            continue
        single = best[start] + _single_score(tokens[start])
        if single > best[start + 1] + 1e-9:
            best[start + 1], back[start + 1] = single, (start, None)
        alone = _alone(tokens[start], lexicon)
        if alone is not None and best[start] - INVALID_CHANGE_COST > best[start + 1] + 1e-9:
            best[start + 1], back[start + 1] = best[start] - INVALID_CHANGE_COST, (start, (alone,))
        function = _function_word(tokens, start)
        if function is not None:
            score = best[start] + FUNCTION_GAIN - _cost(tokens[start], function)
            if score > best[start + 1] + 1e-9:
                best[start + 1], back[start + 1] = score, (start, (function,))
        for end, score, option in _span_options(tokens, start, lexicon):
            if best[start] + score > best[end] + 1e-9:
                best[end], back[end] = best[start] + score, (start, option)
    reading: list[str | None] = [None] * n
    end = n
    while end > 0:
        start, word = back[end]
        if word is not None:
            for k, syllable in enumerate(word):
                if syllable != tokens[start + k].canon:
                    reading[start + k] = syllable
        end = start
    return reading


def _pieces(line: list[OcrWord]) -> list[list[OcrWord]]:
    """An engine line, x-sorted, cut where two words stand further apart than :data:`MAX_GAP` word heights
    (header columns side by side); justified body text keeps its lines whole."""
    ordered = sorted(line, key=lambda w: w.box[0])
    heights = sorted(w.box[3] - w.box[1] for w in ordered)
    height = max(1, heights[len(heights) // 2])
    pieces: list[list[OcrWord]] = [[ordered[0]]] if ordered else []
    for word in ordered[1:]:
        if word.box[0] - pieces[-1][-1].box[2] > MAX_GAP * height:
            pieces.append([word])
        else:
            pieces[-1].append(word)
    return pieces


def _runs(ocr: OcrPage) -> list[list[OcrWord]]:
    """Runs of words read together: each line's pieces, the last piece of a line continued by the first of the
    next line of the same block (a word may wrap: ``kiểm`` at a line's end, ``tra`` at the next one's start)."""
    runs: list[list[OcrWord]] = []
    previous: tuple[int, int] | None = None
    for line in ocr.lines():
        pieces = _pieces(line)
        here = (line[0].block, line[0].line)
        if runs and pieces and previous == (here[0], here[1] - 1):
            runs[-1] = runs[-1] + pieces[0]
            pieces = pieces[1:]
        runs.extend(pieces)
        previous = here
    return runs


def correct_line(words: Sequence[OcrWord], lexicon: Lexicon) -> list[str]:
    """The words' texts, corrected (same length and order as ``words``)."""
    tokens = _tokens(words, lexicon)
    reading = _best_reading(tokens, lexicon)
    texts = []
    for word, token, syllable in zip(words, tokens, reading, strict=True):
        if syllable is None or token.case is None:
            texts.append(word.text)
        else:
            texts.append(token.lead + with_case(syllable, token.case) + token.trail)
    return texts


def correct_page(ocr: OcrPage, lexicon: Lexicon | None) -> tuple[OcrPage, dict[str, object]]:
    """The page with its words' diacritics corrected (boxes, confidences and order unchanged), and the steps
    to record: how many words changed, and the lexicon's provenance. ``lexicon`` None: the page as it is."""
    if lexicon is None or not ocr.words:
        return ocr, {}
    changed: dict[int, str] = {}
    for run in _runs(ocr):
        for word, text in zip(run, correct_line(run, lexicon), strict=True):
            if text != word.text:
                changed[id(word)] = text
    steps: dict[str, object] = {"language_corrected": len(changed)}
    steps.update({f"language_lexicon_{k}": v for k, v in lexicon.provenance.items()})
    if not changed:
        return ocr, steps
    words = [w.model_copy(update={"text": changed[id(w)]}) if id(w) in changed else w for w in ocr.words]
    return ocr.model_copy(update={"words": words}), steps
