"""One-stroke letters read for 1 inside digit groups (pipeline.digits); everything else as read."""

from __future__ import annotations

import pytest

from pipeline.digits import fix_digits, fix_word
from schemas.ocr import OcrPage, OcrWord


@pytest.mark.parametrize(("read", "number"), [("COVID-I9", "COVID-19"), ("l4", "14"), ("l2/3/2020", "12/3/2020"),
                                              ("(0l).", "(01)."), ("2l/QĐ-UBND", "21/QĐ-UBND")])
def test_one_stroke_letters_in_a_digit_group_are_ones(read: str, number: str) -> None:
    assert fix_word(read) == number


@pytest.mark.parametrize("read", ["COVID", "I", "II", "Il1", "lI4", "8U", "H5N1", "|2025", "[9]", "9]", "1§99",
                                  "ĐHĐIL", "Số:", "Ill"])
def test_anything_else_stays_as_read(read: str) -> None:
    assert fix_word(read) == read


def test_page_words_change_text_only() -> None:
    words = [OcrWord(text="COVID-I9", box=(10, 10, 200, 50), confidence=0.8, line=0),
             OcrWord(text="năm", box=(210, 10, 300, 50), confidence=0.9, line=0)]
    page = OcrPage(number=1, text="", words=words, confidence=0.85, width=1000, height=1000, dpi=300)
    fixed, steps = fix_digits(page)
    assert [w.text for w in fixed.words] == ["COVID-19", "năm"] and steps == {"digits_fixed": 1}
    assert fixed.words[0].box == words[0].box and fixed.words[0].confidence == words[0].confidence
    assert fix_digits(fixed) == (fixed, {})


@pytest.mark.parametrize(("read", "plain"), [("V\u2044v", "V/v"), ("(để t\u2044h)", "(để t/h)"), ("1\u2215QĐ", "1/QĐ"),
                                             ("l2\u20443", "12/3")])
def test_fraction_and_division_slashes_are_read_as_a_slash(read: str, plain: str) -> None:
    assert fix_word(read) == plain
