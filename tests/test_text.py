import random
import unicodedata

import pytest

from schemas.text import (
    canonical_tones,
    clean_ocr_text,
    exact_tokens,
    fold,
    fold_fast,
    natural_key,
    spelling_pattern,
    token_spans,
    tokens,
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Đà Nẵng", "da nang"),
        ("ĐẢNG CỘNG SẢN VIỆT NAM", "dang cong san viet nam"),
        ("hòa", "hoa"),
        ("hoà", "hoa"),
        ("Thành ủy", "thanh uy"),
        ("THÀNH UỶ", "thanh uy"),
        ("Nghị quyết", "nghi quyet"),
        ("đồng chí", "dong chi"),
    ],
)
def test_fold_removes_tones_marks_and_d_stroke(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_fold_treats_nfd_input_like_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Nghị quyết Ban Thường vụ")
    assert nfd != "Nghị quyết Ban Thường vụ"
    assert fold(nfd) == fold("Nghị quyết Ban Thường vụ") == "nghi quyet ban thuong vu"


def test_fold_keeps_offsets_of_nfc_text() -> None:
    text = "Quyết định số 15-QĐ/TU về công tác văn thư"
    assert len(fold(text)) == len(unicodedata.normalize("NFC", text))
    for tok, start, end in token_spans(text):
        assert fold(text[start:end]) == tok


def test_clean_ocr_text_fixes_icelandic_eth_only() -> None:
    assert clean_ocr_text("66-QÐ/TW ðồng") == "66-QĐ/TW đồng"
    assert clean_ocr_text("Hòa") == "Hòa"  # tone placement of OCR text is never altered


def test_tokens_split_symbols() -> None:
    assert tokens("Số 15-NQ/TU") == ["so", "15", "nq", "tu"]


def test_natural_key_orders_numbers_numerically() -> None:
    names = ["p10.jpg", "p2.jpg", "p1.jpg", "P3.jpg"]
    assert sorted(names, key=natural_key) == ["p1.jpg", "p2.jpg", "P3.jpg", "p10.jpg"]


@pytest.mark.parametrize(("a", "b"), [("hòa", "hoà"), ("thủy", "thuỷ"), ("Thành ủy", "THÀNH UỶ"), ("Hóa", "HOÁ"),
                                      ("khỏe", "khoẻ"), ("quý", "qúy")])
def test_canonical_tones_equates_tone_placements(a: str, b: str) -> None:
    assert canonical_tones(a) == canonical_tones(b)
    assert canonical_tones(unicodedata.normalize("NFD", a)) == canonical_tones(a)


def test_canonical_tones_keeps_every_other_diacritic() -> None:
    forms = [canonical_tones(w) for w in ("ma", "má", "mà", "mả", "mã", "mạ", "mơ", "Đa", "da")]
    assert len(set(forms)) == len(forms)
    assert canonical_tones("Hòa hoa hóa") == "hoà hoa hoá"
    assert canonical_tones("66-QÐ/TW") == "66-qđ/tw"  # the Eth fix, lower case, punctuation kept


def test_exact_tokens_are_the_distinct_accented_words() -> None:
    assert exact_tokens("Hòa hoà hoa ĐẢNG đảng 15-NQ/TU") == ["hoà", "đảng"]


def test_fold_fast_equals_fold() -> None:
    samples = ["Đà Nẵng", "66-QÐ/TW ðồng", unicodedata.normalize("NFD", "Nghị quyết"), "Ǆ ǅ İstanbul ß",
               "한국어 Ελληνικά Ё", "“trích yếu” — …", "\u0301lone", "x\U0001f600y"]
    for text in samples:
        assert fold_fast(text) == fold(text), text


def test_fold_fast_equals_fold_for_every_character_of_its_table_and_random_mixes() -> None:
    """``fold_fast`` takes a quicker route (lower case, NFD, marks dropped) and falls back to its table when a
    character does not fold to one ASCII letter: checked for each character of the table, alone and between
    Vietnamese letters, and for random mixes (NFC, NFD and ``is_nfc`` input)."""
    table = [chr(c) for lo, hi in ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x2000, 0x206F)) for c in range(lo, hi + 1)]
    for ch in table:
        for text in (ch, f"ạ{ch}B", f"Đ{ch}{ch}ư"):
            assert fold_fast(text) == fold(text), repr(text)
    rng = random.Random(11)
    letters = "aăâbdđeêioôơuưyAĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ ,.-/\n19"
    for _ in range(3000):
        text = "".join(rng.choice(letters if rng.random() < 0.9 else table) for _ in range(rng.randint(0, 40)))
        assert fold_fast(text) == fold(text), repr(text)
        assert fold_fast(unicodedata.normalize("NFC", text), is_nfc=True) == fold(text), repr(text)
        assert fold_fast(unicodedata.normalize("NFD", text)) == fold(text), repr(text)


def test_spelling_pattern_finds_every_spelling_of_a_folded_word() -> None:
    import re

    pattern = spelling_pattern("cong")
    assert pattern is not None
    assert re.findall(pattern, "Công CÔNG cống cong công") == ["Công", "CÔNG", "cống", "cong", "công"]
    assert spelling_pattern("dang") and re.fullmatch(spelling_pattern("dang") or "", "ĐẢNG")
    assert spelling_pattern("한") is None


def test_no_character_outside_the_fold_table_folds_to_an_ascii_letter_or_digit() -> None:
    """What lets search find folded ASCII words in a text by their spellings, without folding the text."""
    from schemas.text import _TABLE_RANGES, _fold_char

    for code in range(0x20000):  # beyond: ideographs, private use, unassigned
        if any(lo <= code <= hi for lo, hi in _TABLE_RANGES) or 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        if unicodedata.normalize("NFC", ch) == ch:
            folded = _fold_char(ch)
            assert not (folded.isascii() and folded.isalnum()), hex(code)
