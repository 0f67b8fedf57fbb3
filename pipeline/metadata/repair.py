"""Small OCR repairs: digit look-alikes in numbers and dates, and spelling by document-internal consensus.

Consensus repair: a document repeats its own vocabulary ("Thành ủy", "thành phố", "Trung ương"), so a word pair
that the OCR read with different marks ("Thanh ủy") or with an impossible Vietnamese onset ("Irung") is replaced
by the spelling that the rest of the document uses much more often. Nothing outside the document is consulted.
A repair never erases a tone mark that was read (``has_tone``): both spellings are then usually real words.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter

from schemas.text import fold

from .vocab import PLACE_KEYS, SURNAME_FORMS

_DIGIT_LOOKALIKES = str.maketrans(
    {
        "o": "0",
        "O": "0",
        "Q": "0",
        "D": "0",
        "I": "1",
        "l": "1",
        "i": "1",
        "j": "1",
        "|": "1",
        "]": "1",
        "[": "1",
        "!": "1",
        "¡": "1",
        "í": "1",
        "ì": "1",
        "S": "5",
        "s": "5",
        "Z": "2",
        "z": "2",
        "B": "8",
        "§": "8",
    }
)
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_BAD_ONSET_RE = re.compile(r"^['\u2018\u2019`]?[Il](r[^\W\d_]+)$")
_MIN_VOTES = 2  # occurrences of the corrected onset form needed
_MIN_RATIO = 1.2  # weight ratio needed when the two spellings are equally frequent


def digit_of(ch: str) -> str:
    """One character as the digit it looks like (``ï``, ``Ì`` → ``1`` through their unmarked letter)."""
    mapped = ch.translate(_DIGIT_LOOKALIKES)
    return mapped if mapped.isdigit() else fold(ch).translate(_DIGIT_LOOKALIKES)


def to_digits(text: str) -> str | None:
    """``text`` with OCR digit look-alikes mapped to digits; None unless the result is all digits."""
    core = text.strip(".,:;-'\"`\u2013")
    digits = "".join(digit_of(ch) for ch in core)
    return digits if digits.isdigit() and digits.isascii() else None


def fix_place_names(text: str) -> str:
    """``text`` with known place names (``vocab.PLACE_NAMES``) misread in their marks written right.

    ``ĐÀ NẰNG`` → ``ĐÀ NẴNG``, ``Đà Nằng,`` → ``Đà Nẵng,``: a run of 2 to 3 words whose folded form is a known
    name is replaced by that name in the run's letter case. Punctuation around the words is kept.
    """
    tokens = text.split(" ")
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for size in (3, 2):
            run = tokens[i : i + size]
            if len(run) < size:
                continue
            head, tail = run[:-1], run[-1]
            core = tail.rstrip(",.;:")
            key = fold(" ".join([*head, core]))
            name = PLACE_KEYS.get(key)
            words = [*head, core]
            if name and all(t.isalpha() and t[:1].isupper() for t in words):
                written = name.upper() if all(t.isupper() for t in words) else name
                out.extend([*written.split(" ")[:-1], written.split(" ")[-1] + tail[len(core):]])
                i += size
                break
        else:
            out.append(tokens[i])
            i += 1
    return " ".join(out)


def _match_case(form: str, original: str) -> str:
    """``form`` written in the letter case of ``original`` (upper, title or lower)."""
    if original.isupper():
        return form.upper()
    if original[:1].isupper():
        return form[:1].upper() + form[1:]
    return form


class Lexicon:
    """Word and word-pair spellings seen in a document (weighted by OCR confidence), for consensus repair."""

    def __init__(self, lines: list[list[tuple[str, float]]]) -> None:
        """``lines``: each line as (token text, OCR confidence) pairs."""
        self.words: Counter[str] = Counter()
        self.pairs: dict[str, Counter[str]] = {}
        self.weights: dict[str, float] = {}
        for line in lines:
            words = [(w.lower(), conf) for tok, conf in line for w in _WORD_RE.findall(tok)]
            self.words.update(w for w, _ in words)
            for (a, ca), (b, cb) in itertools.pairwise(words):
                form = f"{a} {b}"
                self.pairs.setdefault(f"{fold(a)} {fold(b)}", Counter())[form] += 1
                self.weights[form] = self.weights.get(form, 0.0) + min(ca, cb)

    def _fix_onset(self, word: str) -> str:
        """``'Irung`` → ``Trung`` when the document spells ``trung`` often enough."""
        m = _BAD_ONSET_RE.match(word)
        if not m:
            return word
        candidate = "T" + m.group(1)
        return candidate if self.words[candidate.lower()] >= _MIN_VOTES else word

    def _best_pair(self, a: str, b: str) -> tuple[str, str] | None:
        votes = self.pairs.get(f"{fold(a)} {fold(b)}")
        if not votes:
            return None
        here = f"{a.lower()} {b.lower()}"
        best = max(votes, key=lambda form: (self.weights.get(form, 0.0), votes[form]))
        if best == here or votes[best] < votes[here]:
            return None
        w_best, w_here = self.weights.get(best, 0.0), self.weights.get(here, 0.0)
        if w_best < _MIN_RATIO * w_here and not (votes[best] > votes[here] and w_best > w_here):
            return None
        x, y = best.split(" ")
        if (has_tone(a) and not has_tone(x)) or (has_tone(b) and not has_tone(y)):
            return None  # a tone mark that was read is kept: "các khóa" is not "các khoa"
        return _match_case(x, a), _match_case(y, b)

    def fix(self, text: str) -> str:
        """``text`` with doubtful spellings replaced by the document's dominant spelling."""
        pieces = re.split(r"(\s+)", text)
        words = [self._fix_onset(p) if p.strip() else p for p in pieces]
        idx = [i for i, p in enumerate(words) if p.strip()]
        changed = -1  # a word repaired with its left neighbour is not changed again with its right one
        for i, j in itertools.pairwise(idx):
            a, b = _core(words[i]), _core(words[j])
            if not a or not b:
                continue
            best = self._best_pair(a, b)
            if best and not (i == changed and best[0] != a):
                words[i] = words[i].replace(a, best[0], 1)
                words[j] = words[j].replace(b, best[1], 1)
                changed = j if best[1] != b else -1
        return "".join(words)


_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng


def has_tone(word: str) -> bool:
    """Does ``word`` carry a Vietnamese tone mark? An unmarked and a marked syllable are usually two words
    (``khoa`` faculty, ``khóa`` course), and OCR drops marks far more often than it invents them: a consensus
    repair may restore or correct a mark, never erase the tone that was read."""
    return any(ch in _TONES for ch in unicodedata.normalize("NFD", word))


def _core(token: str) -> str:
    """The letters of a token without surrounding punctuation (empty if it has other characters inside)."""
    core = token.strip(".,;:()\"'!?-\u2013")
    return core if core and all(ch.isalpha() for ch in core) else ""


def mend_surname(word: str) -> str:
    """A family name whose capital was read as a bracket, bar or other sign (``[rương`` for ``Trương``: a stroke
    across the T of a signed name): the sign followed by lower-case letters becomes the one family name
    (``vocab.SURNAME_FORMS``) that ends with those letters, when exactly one does; anything else stays as read."""
    if len(word) < 3 or word[0].isalnum() or not (word[1:].isalpha() and word[1:].islower()):
        return word
    found = [s for s in SURNAME_FORMS if len(s) == len(word) and s[1:] == word[1:]]
    return found[0] if len(found) == 1 else word
