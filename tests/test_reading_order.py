"""Reading order rebuilt from word boxes (synthetic pages: invented words and boxes, no OCR)."""

from __future__ import annotations

from ocr_models.hocr import text_from_words
from pipeline.reading_order import order_page_text, split_at_gaps
from schemas.ocr import OcrPage, OcrWord

WIDTH, HEIGHT = 2480, 3508
CHAR_W, WORD_H, SPACE = 30, 45, 20


class _Builder:
    """Lays out words like tesseract reports them: one engine line per call, blocks by index."""

    def __init__(self) -> None:
        self.words: list[OcrWord] = []
        self.line = -1

    def line_of(self, block: int, *segments: tuple[int, int, str]) -> None:
        """One engine line made of (x, y, text) segments (tesseract merges side-by-side columns)."""
        self.line += 1
        for x, y, text in segments:
            for word in text.split():
                w = CHAR_W * len(word)
                self.words.append(OcrWord(text=word, box=(x, y, x + w, y + WORD_H), confidence=0.9,
                                          line=self.line, block=block))
                x += w + SPACE

    def page(self) -> OcrPage:
        return OcrPage(number=1, text=text_from_words(self.words), words=self.words, confidence=0.9,
                       width=WIDTH, height=HEIGHT, dpi=300)


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


BODY = [
    "Dòng thân văn bản thứ nhất trải rộng khắp chiều ngang của trang giấy mẫu",
    "dòng thân văn bản thứ hai cũng trải rộng khắp chiều ngang trang giấy",
    "dòng thân văn bản thứ ba kết thúc đoạn văn mẫu của trang thử nghiệm",
]


def _two_column_page() -> OcrPage:
    b = _Builder()
    # header: left block (issuing body, number) and right block (national header, place and date), merged rows
    b.line_of(0, (350, 240, "CƠ QUAN CẤP TRÊN"), (1400, 240, "QUỐC HIỆU MẪU IN HOA"))
    b.line_of(0, (420, 310, "ĐƠN VỊ SOẠN"))
    b.line_of(0, (450, 460, "Số 7-TB/ĐV"), (1350, 460, "Thị trấn, ngày 2 tháng 3 năm 2020"))
    b.line_of(1, (1220, 600, "THÔNG BÁO MẪU"))  # centred on the text area
    for i, text in enumerate(BODY):
        b.line_of(2, (350, 800 + 80 * i, text))
    # footer: recipients on the left, signature block on the right, merged rows
    b.line_of(3, (350, 1200, "Nơi nhận:"), (1500, 1200, "TM. BAN MẪU"))
    b.line_of(3, (350, 1270, "- Đơn vị thứ nhất,"), (1550, 1270, "TRƯỞNG BAN"))
    b.line_of(3, (350, 1340, "- Lưu hồ sơ."))
    b.line_of(4, (1500, 1600, "Người Ký Tên"))
    return b.page()


def test_header_columns_are_read_left_then_right() -> None:
    lines = _lines(order_page_text(_two_column_page()))
    assert lines[:5] == [
        "CƠ QUAN CẤP TRÊN",
        "ĐƠN VỊ SOẠN",
        "Số 7-TB/ĐV",
        "QUỐC HIỆU MẪU IN HOA",
        "Thị trấn, ngày 2 tháng 3 năm 2020",
    ]
    assert lines[5] == "THÔNG BÁO MẪU"


def test_body_follows_title_in_engine_order() -> None:
    lines = _lines(order_page_text(_two_column_page()))
    assert lines[6:9] == BODY


def test_footer_recipients_then_signature_block() -> None:
    lines = _lines(order_page_text(_two_column_page()))
    assert lines[9:] == [
        "Nơi nhận:",
        "- Đơn vị thứ nhất,",
        "- Lưu hồ sơ.",
        "TM. BAN MẪU",
        "TRƯỞNG BAN",
        "Người Ký Tên",
    ]


def test_every_word_is_kept_once() -> None:
    page = _two_column_page()
    assert sorted(order_page_text(page).split()) == sorted(w.text for w in page.words)


def test_single_column_page_keeps_engine_order() -> None:
    b = _Builder()
    b.line_of(0, (1000, 300, "TIÊU ĐỀ GIỮA"))
    for i, text in enumerate(BODY):
        b.line_of(1, (350, 500 + 80 * i, text))
    b.line_of(1, (350, 740, "dòng ngắn cuối."))
    page = b.page()
    assert _lines(order_page_text(page)) == _lines(page.text)


def test_wide_gap_inside_body_does_not_reorder_body_lines() -> None:
    """Side-by-side pieces in the middle of the page (a table row, a gap) stay in engine order."""
    b = _Builder()
    b.line_of(0, (350, 300, BODY[0]))
    b.line_of(0, (350, 380, "Cột một"), (1600, 380, "cột hai"))
    b.line_of(0, (350, 460, "Hàng hai"), (1600, 460, "giá trị hai"))
    b.line_of(0, (350, 540, BODY[1]))
    page = b.page()
    assert _lines(order_page_text(page)) == [BODY[0], "Cột một cột hai", "Hàng hai giá trị hai", BODY[1]]


def test_page_without_boxes_keeps_its_text() -> None:
    words = [OcrWord(text="chữ", box=(0, 0, 0, 0), confidence=0.5)]
    page = OcrPage(number=1, text="giữ nguyên\nvăn bản", words=words, confidence=0.5, width=10, height=10, dpi=300)
    assert order_page_text(page) == "giữ nguyên\nvăn bản"


def test_empty_page() -> None:
    page = OcrPage(number=1, text="", words=[], confidence=0.0, width=10, height=10, dpi=300)
    assert order_page_text(page) == ""


def test_split_at_gaps_uses_word_height() -> None:
    def word(x0: int, x1: int) -> OcrWord:
        return OcrWord(text="ab", box=(x0, 0, x1, 40), confidence=1.0)

    parts = split_at_gaps([word(0, 100), word(120, 200), word(300, 400)], page_width=1000)
    assert [len(p) for p in parts] == [2, 1]  # 20 px is a space, 100 px > 1.2 x 40 px splits


def test_header_blocks_read_right_first_by_the_engine_are_put_back() -> None:
    b = _Builder()
    b.line_of(0, (1400, 240, "QUỐC HIỆU MẪU IN HOA"))
    b.line_of(0, (1350, 460, "Thị trấn, ngày 2 tháng 3 năm 2020"))
    b.line_of(1, (350, 240, "CƠ QUAN CẤP TRÊN"))
    b.line_of(1, (450, 460, "Số 7-TB/ĐV"))
    for i, text in enumerate(BODY):
        b.line_of(2, (350, 700 + 80 * i, text))
    lines = _lines(order_page_text(b.page()))
    assert lines == ["CƠ QUAN CẤP TRÊN", "Số 7-TB/ĐV", "QUỐC HIỆU MẪU IN HOA",
                     "Thị trấn, ngày 2 tháng 3 năm 2020", *BODY]


def test_footer_only_page_reads_recipients_then_signature() -> None:
    """A last page holding only the footer has no full-width line at all."""
    b = _Builder()
    b.line_of(0, (350, 300, "Nơi nhận:"), (1500, 300, "TM. BAN MẪU"))
    b.line_of(0, (350, 370, "- Đơn vị thứ nhất,"), (1550, 370, "TRƯỞNG BAN"))
    b.line_of(0, (350, 440, "- Lưu hồ sơ."))
    b.line_of(1, (1500, 700, "Người Ký Tên"))
    lines = _lines(order_page_text(b.page()))
    assert lines == ["Nơi nhận:", "- Đơn vị thứ nhất,", "- Lưu hồ sơ.", "TM. BAN MẪU", "TRƯỞNG BAN", "Người Ký Tên"]


def test_wide_signature_line_across_the_middle_stays_in_the_footer() -> None:
    """A long authority line of the signature block reaches past the middle but is centred on its column."""
    b = _Builder()
    for i, text in enumerate(BODY):
        b.line_of(0, (350, 300 + 80 * i, text))
    b.line_of(1, (350, 600, "Nơi nhận:"), (1250, 600, "TM. BAN CHẤP HÀNH ĐẢNG BỘ KHU MẪU"))
    b.line_of(1, (350, 670, "- Đơn vị thứ nhất,"), (1550, 670, "TRƯỞNG BAN"))
    b.line_of(1, (350, 740, "- Lưu hồ sơ."))
    lines = _lines(order_page_text(b.page()))
    assert lines[3:] == ["Nơi nhận:", "- Đơn vị thứ nhất,", "- Lưu hồ sơ.", "TM. BAN CHẤP HÀNH ĐẢNG BỘ KHU MẪU",
                         "TRƯỞNG BAN"]


def test_punctuation_speck_in_a_column_gap_does_not_bridge_it() -> None:
    def word(text: str, x0: int, x1: int) -> OcrWord:
        return OcrWord(text=text, box=(x0, 0, x1, 40), confidence=0.9)

    words = [word("ĐÀ", 0, 80), word("NẴNG", 100, 250), word("_", 300, 320), word("CỘNG", 400, 550)]
    parts = split_at_gaps(words, page_width=1000)
    assert [[w.text for w in p] for p in parts] == [["ĐÀ", "NẴNG", "_"], ["CỘNG"]]


def test_low_resolution_header_columns_closer_than_a_word_height_are_split() -> None:
    """An 80-dpi page upscaled: narrow word spaces, the header columns 1.1 word heights (5 spaces) apart."""
    words: list[OcrWord] = []

    def row(line: int, y: int, *segments: tuple[int, str]) -> None:
        for x, text in segments:
            for token in text.split():
                w = 22 * len(token)
                words.append(OcrWord(text=token, box=(x, y, x + w, y + 45), confidence=0.9, line=line))
                x += w + 10

    row(0, 140, (150, "ỦY BAN NHÂN DÂN THÀNH PHỐ MẪU"), (766, "QUỐC HIỆU MẪU IN HOA XÃ HỘI"))  # 50 px gap
    row(1, 210, (150, "SỞ MẪU ĐƠN"), (960, "Khẩu hiệu mẫu"))
    row(2, 280, (150, "Số 12 /SMĐV"), (930, "Tỉnh, ngày 2 tháng 3 năm 2020"))
    row(3, 420, (150, "Kính gửi:"))
    for i in range(3):
        row(4 + i, 500 + 80 * i, (150, "dòng thân văn bản mẫu trải rộng khắp chiều ngang của trang giấy này"))
    page = OcrPage(number=1, text=text_from_words(words), words=words, confidence=0.9, width=1728, height=2880,
                   dpi=300)
    lines = _lines(order_page_text(page))
    assert lines[:7] == [
        "ỦY BAN NHÂN DÂN THÀNH PHỐ MẪU",
        "SỞ MẪU ĐƠN",
        "Số 12 /SMĐV",
        "QUỐC HIỆU MẪU IN HOA XÃ HỘI",
        "Khẩu hiệu mẫu",
        "Tỉnh, ngày 2 tháng 3 năm 2020",
        "Kính gửi:",
    ]
