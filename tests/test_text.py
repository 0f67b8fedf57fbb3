import unicodedata

import pytest

from schemas.text import clean_ocr_text, fold, natural_key, token_spans, tokens


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
