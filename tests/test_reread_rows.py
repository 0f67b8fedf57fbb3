"""Fused lines read again row by row: the rows of a cut-out and the merge of their readings (synthetic images)."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.reading_order import order_page_text
from pipeline.reread import DoubtfulLine, doubtful_lines, merge_rereads, text_rows
from schemas.ocr import OcrPage, OcrWord

HEIGHT = 45  # word height in pixels (12 pt at 300 dpi)


def _fused_lines() -> np.ndarray:
    """Three lines of text 60 px apart, each with accent marks floating above its letters."""
    crop = np.full((200, 700, 3), 255, np.uint8)
    for i, text in enumerate(("Noi nhan:", "- Hieu truong (de b/c);", "- Website;")):
        y = 45 + 60 * i
        cv2.putText(crop, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
        for x in (40, 120, 200):
            cv2.line(crop, (x, y - 30), (x + 8, y - 36), (0, 0, 0), 2)  # a tone mark, apart from its letter
    return np.asarray(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def test_fused_lines_split_into_rows_with_their_accents() -> None:
    crop = _fused_lines()
    rows = text_rows(crop, HEIGHT)
    assert len(rows) == 3
    for (top, bottom), baseline in zip(rows, (45, 105, 165), strict=True):
        assert top <= baseline - 36 and bottom >= baseline  # the row holds its accents and its letters
    assert rows[0][0] == 0 and rows[-1][1] == crop.shape[0]


def test_a_single_line_is_one_row() -> None:
    crop = _fused_lines()[:70]
    assert text_rows(crop, HEIGHT) == [(0, 70)]


def _w(text: str, box: tuple[int, int, int, int], conf: float, line: int) -> OcrWord:
    return OcrWord(text=text, box=box, confidence=conf, line=line)


def test_tall_doubtful_piece_is_replaced_by_its_rows_as_lines_of_their_own() -> None:
    body = [_w(f"dòng{i}", (300 + 150 * i, 1000, 430 + 150 * i, 1045), 0.95, 0) for i in range(8)]
    fused = [_w("_", (360, 2297, 373, 2384), 0.46, 1), _w("TM", (396, 2299, 463, 2384), 0.09, 1),
             _w("tỜNg", (474, 2299, 609, 2384), 0.0, 1), _w("(ÁẾ", (622, 2298, 679, 2339), 0.0, 1)]
    page = OcrPage(number=1, text="", words=body + fused, confidence=0.8, width=2480, height=3508, dpi=300)
    lines = doubtful_lines(page)
    assert [line.tall for line in lines] == [True]
    rows = [_w("-", (10, 30, 20, 34), 0.9, 0), _w("Hiệu", (30, 10, 110, 50), 0.95, 0),
            _w("trưởng;", (120, 10, 260, 50), 0.93, 0),
            _w("-", (10, 75, 20, 79), 0.9, 1), _w("Website;", (30, 55, 200, 95), 0.95, 1)]
    merged, changed = merge_rereads(page, lines, [rows])
    assert changed == 1
    text = order_page_text(merged)
    assert "- Hiệu trưởng;\n- Website;" in text
    assert "TM" not in text


def test_rows_that_read_no_better_leave_the_piece() -> None:
    words = [_w("Một", (300, 300, 390, 390), 0.4, 0), _w("hai", (400, 300, 490, 390), 0.6, 0)]
    page = OcrPage(number=1, text="", words=words, confidence=0.5, width=2480, height=3508, dpi=300)
    line = DoubtfulLine(tuple(words), (290, 290, 500, 400), tall=True)
    merged, changed = merge_rereads(page, [line], [[_w("Mót", (5, 5, 90, 50), 0.5, 0)]])
    assert changed == 0 and merged is page


def test_a_second_reading_never_loses_a_secrecy_mark_or_most_of_the_line() -> None:
    fused = (_w("Số", (300, 200, 350, 240), 0.4, 1), _w("15-NQ/TU", (360, 200, 560, 300), 0.3, 1),
             _w("MẬT", (380, 260, 470, 300), 0.3, 1))
    page = OcrPage(number=1, text="", words=list(fused), confidence=0.3, width=2480, height=3508, dpi=300)
    line = DoubtfulLine(fused, (290, 190, 570, 310), tall=True)
    first_row_only = [_w("Số", (10, 5, 60, 45), 0.95, 0), _w("15-NQ/TU", (70, 5, 270, 45), 0.95, 0)]
    merged, changed = merge_rereads(page, [line], [first_row_only])
    assert changed == 0 and "MẬT" in [w.text for w in merged.words]
    flat = DoubtfulLine(fused, (290, 190, 570, 310))
    merged, changed = merge_rereads(page, [flat], [[_w("Số", (10, 5, 60, 45), 0.97, 0)]])
    assert changed == 0 and [w.text for w in merged.words] == ["Số", "15-NQ/TU", "MẬT"]
