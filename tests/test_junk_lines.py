"""Junk-line filtering and list dashes on synthetic pages (invented words and boxes, no OCR)."""

from __future__ import annotations

import pytest

from ocr_models.hocr import text_from_words
from pipeline.junk_lines import clean_page, is_plausible, is_syllable
from pipeline.reading_order import order_page_text
from schemas.ocr import OcrPage, OcrWord

WIDTH, HEIGHT = 2480, 3508


def _line(words: list[tuple[str, float]], x: int, y: int, line: int) -> list[OcrWord]:
    out = []
    for text, conf in words:
        w = 28 * max(1, len(text))
        out.append(OcrWord(text=text, box=(x, y, x + w, y + 45), confidence=conf, line=line, block=0))
        x += w + 20
    return out


def _page(*lines: list[OcrWord]) -> OcrPage:
    words = [w for line in lines for w in line]
    return OcrPage(number=1, text=text_from_words(words), words=words, confidence=0.9, width=WIDTH,
                   height=HEIGHT, dpi=300)


@pytest.mark.parametrize("word", ["nghiêng", "Trường", "HIỆU", "khuyến", "giữ", "quốc", "à", "TY"])
def test_well_formed_syllables(word: str) -> None:
    assert is_syllable(word)


@pytest.mark.parametrize("word", ["Enx", "tỜNg", "Jun", "x", "B_à", "ảá", "bcd", "Ewxtflt"])
def test_malformed_syllables(word: str) -> None:
    assert not is_syllable(word)


@pytest.mark.parametrize("word", ["2025-2026", "05/9/2025", "8h00", "/TB-ĐHĐL", "COVID-19", "(để", "80%.",
                                  "https://epu.edu.vn", "Noinhận:"])
def test_plausible_words(word: str) -> None:
    assert is_plausible(word)


def test_seal_and_signature_junk_is_dropped_and_text_kept() -> None:
    body = _line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95), ("như", 0.93), ("sau:", 0.9)],
                 300, 900, 0)
    junk = _line([("`:", 0.34), ("TY", 0.11), ("Enx", 0.0), ("x", 0.65)], 1500, 1200, 1)
    speck = _line([("1K", 0.14), ("——", 0.44)], 1500, 1300, 2)
    weak = _line([("đi", 0.06), ("dị", 0.9), ("nu:", 0.0), ("'", 0.19), ("đc", 0.34)], 1500, 1400, 3)
    title = _line([("PHÓ", 0.75), ("TRƯỞNG", 0.62), ("PHÒNG", 0.9)], 1500, 1500, 4)
    page, dropped, _ = clean_page(_page(body, junk, speck, weak, title))
    text = order_page_text(page)
    assert "Nhà trường thông báo như sau:" in text and "PHÓ TRƯỞNG PHÒNG" in text
    assert not any(bad in text for bad in ("Enx", "1K", "dị"))
    assert "1K ——" in dropped and "`: TY Enx x" in dropped


def test_number_line_and_page_number_are_kept() -> None:
    number = _line([("Số:", 0.93), ("ø07ó../TB-ĐHĐL", 0.12)], 300, 300, 0)
    page_no = _line([("2", 0.96)], 1200, 100, 1)
    page, dropped, _ = clean_page(_page(page_no, number))
    assert dropped == [] and len(page.words) == 3


def test_list_dash_is_restored_at_the_left_and_a_mark_dropped_on_the_right() -> None:
    item = _line([(":", 0.4), ("Tiếp", 0.95), ("tục", 0.96), ("quán", 0.95), ("triệt", 0.94)], 300, 900, 0)
    item2 = _line([("_—_“", 0.3), ("Làm", 0.9), ("việc", 0.95), ("trực", 0.95), ("tiếp", 0.95)], 300, 1000, 1)
    kept = _line([("-", 0.93), ("Như", 0.96), ("trên;", 0.96)], 300, 1100, 2)
    body = _line([("Dòng", 0.95)] + [("thân", 0.95)] * 12, 300, 700, 3)
    title = _line([("_", 0.6), ("PHÓ", 0.95), ("HIỆU", 0.95), ("TRƯỞNG", 0.95)], 1600, 1300, 4)
    page, _, fixed = clean_page(_page(body, item, item2, kept, title))
    lines = [ln for ln in order_page_text(page).splitlines() if ln.strip()]
    assert "- Tiếp tục quán triệt" in lines
    assert "- Làm việc trực tiếp" in lines
    assert "- Như trên;" in lines
    assert "PHÓ HIỆU TRƯỞNG" in lines
    assert fixed == 3


def test_lettering_inside_a_seal_is_dropped_unless_read_surely() -> None:
    lettering = _line([("TRƯỜNG", 0.7), ("ĐẠI", 0.8), ("HỌC", 0.8)], 1420, 2150, 0)
    name = _line([("Phùng", 0.95), ("Thị", 0.96), ("Xuân", 0.96), ("Bình", 0.96)], 1400, 2450, 1)
    seal = (1363, 1955, 468, 464)
    page, dropped, _ = clean_page(_page(lettering, name), seals=[seal])
    assert dropped == ["TRƯỜNG ĐẠI HỌC"]
    assert "Phùng Thị Xuân Bình" in order_page_text(page)
    page, dropped, _ = clean_page(_page(lettering, name))
    assert dropped == []


def test_signature_strokes_read_as_capitals_are_dropped() -> None:
    body = [_line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95)], 300, 300 + 60 * i, i)
            for i in range(5)]
    strokes = [OcrWord(text="MS", box=(1560, 2678, 1722, 2799), confidence=0.63, line=9),
               OcrWord(text="TÔ", box=(1812, 2678, 1923, 2799), confidence=0.0, line=9)]
    page, dropped, _ = clean_page(_page(*body, strokes))
    assert dropped == ["MS TÔ"]
    assert len(page.words) == 20


def test_a_badly_read_secrecy_mark_is_left_for_the_stamp_reader() -> None:
    body = _line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95)], 300, 300, 0)
    mark = _line([("MẶT", 0.3)], 400, 600, 1)
    page, dropped, _ = clean_page(_page(body, mark))
    assert dropped == [] and "MẶT" in order_page_text(page)


@pytest.mark.parametrize(("mark", "confidence"), [("MẶI", 0.3), ("MẬI", 0.45), ("TỐI MẠI", 0.3), ("KHÂN", 0.2),
                                                  ("THƯỢNG KHÁN", 0.3), ("HOẢ TỐC", 0.3)])
def test_a_secrecy_or_urgency_mark_misread_by_one_letter_is_never_dropped(mark: str, confidence: float) -> None:
    body = _line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95)], 300, 300, 0)
    read = _line([(t, confidence) for t in mark.split()], 400, 600, 1)
    page, dropped, _ = clean_page(_page(body, read))
    assert dropped == [] and mark in order_page_text(page)
    inside_seal = (300, 500, 600, 600)  # x, y, w, h: the mark lies within the seal's disc
    page, dropped, _ = clean_page(_page(body, read), [inside_seal])
    assert dropped == [] and mark in order_page_text(page)


def test_a_poorly_read_name_number_or_date_stays() -> None:
    body = [_line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95)], 300, 300 + 60 * i, i)
            for i in range(5)]
    name = _line([("Lê", 0.45), ("Văn", 0.45), ("Ba", 0.4)], 1600, 2800, 8)
    notation = _line([("15-NQ/TU", 0.2)], 300, 900, 9)
    date = _line([("12/3/2020", 0.2)], 300, 1000, 10)
    page, dropped, _ = clean_page(_page(*body, name, notation, date))
    assert dropped == []
    assert {"Lê", "Văn", "Ba", "15-NQ/TU", "12/3/2020"} <= {w.text for w in page.words}


def _sized(words: list[tuple[str, float, int]], x: int, y: int, line: int) -> list[OcrWord]:
    """Words of given heights, bottoms aligned on ``y + 45``."""
    out = []
    for text, conf, height in words:
        w = 28 * max(1, len(text))
        out.append(OcrWord(text=text, box=(x, y + 45 - height, x + w, y + 45), confidence=conf, line=line, block=0))
        x += w + 20
    return out


def _body(lines: int = 6) -> list[list[OcrWord]]:
    return [_line([("Nhà", 0.95), ("trường", 0.96), ("thông", 0.96), ("báo", 0.95)], 300, 500 + 60 * i, 10 + i)
            for i in range(lines)]


def test_a_fused_strip_of_the_next_line_is_cut_off_and_the_item_kept() -> None:
    """``: Website; - xỉ na x7at ...``: a list item read with the top strip of the line under it."""
    fused = _sized([(":", 0.22, 6), ("Website;", 0.79, 45), ("-", 0.79, 9), ("xỉ", 0.26, 14), ("na", 0.26, 14),
                    ("x7at", 0.0, 14), ("“1*‹rY^/^1Y", 0.0, 10), ("TY", 0.2, 10)], 300, 1400, 1)
    cleaned, dropped, _ = clean_page(_page(*_body(), fused))
    kept = [w.text for w in cleaned.words if w.line == 1]
    assert kept == ["-", "Website;"]
    assert dropped == ["- xỉ na x7at “1*‹rY^/^1Y TY"]


@pytest.mark.parametrize(("word", "conf", "kept"), [
    ("Website;", 0.9, True),  # a foreign word read surely anchors its line
    ("Website;", 0.5, False),  # ... not when read unsurely
    ("wEBSiTE", 0.9, False),  # ... nor in mixed case
    ("Webs", 0.9, False),  # ... nor a short one
])
def test_foreign_words_anchor_only_when_read_surely(word: str, conf: float, kept: bool) -> None:
    junk = _sized([("TY", 0.11, 45), ("Enx", 0.0, 45), (word, conf, 45)], 1500, 1400, 1)
    cleaned, _, _ = clean_page(_page(*_body(), junk))
    assert [w.text for w in cleaned.words if w.line == 1] == ([w.text for w in junk] if kept else [])


def test_a_small_mark_is_never_cut_off_as_a_fragment() -> None:
    line = _sized([("Số:", 0.9, 45), ("15-NQ/TU", 0.9, 45), ("MẬT", 0.4, 12)], 300, 1400, 1)
    cleaned, _, _ = clean_page(_page(*_body(), line))
    assert [w.text for w in cleaned.words if w.line == 1] == ["Số:", "15-NQ/TU", "MẬT"]
