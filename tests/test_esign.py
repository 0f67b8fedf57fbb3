"""The e-signature overlay stamp found among the words read and kept apart from the page text."""

from __future__ import annotations

from ocr_models.hocr import text_from_words
from pipeline.esign import find_esignature
from pipeline.reading_order import order_page_text
from schemas.ocr import OcrPage, OcrWord


def _words(text: str, x: int, y: int, line: int) -> list[OcrWord]:
    out = []
    for token in text.split():
        w = 26 * len(token)
        out.append(OcrWord(text=token, box=(x, y, x + w, y + 40), confidence=0.9, line=line))
        x += w + 18
    return out


def _page(*lines: list[OcrWord]) -> OcrPage:
    words = [w for line in lines for w in line]
    return OcrPage(number=1, text=text_from_words(words), words=words, confidence=0.9, width=2480, height=3508,
                   dpi=300)


def test_copy_stamp_over_the_motto_is_taken_out_of_the_text() -> None:
    page = _page(
        _words("SAO Y", 1700, 20, 0),
        _words("Ủy ban nhân dân tỉnh Mẫu", 1702, 62, 1),
        _words("Thời gian ký: 19/10/2023 10:56:22 +07:00", 1698, 104, 2),
        _words("ỦY BAN NHÂN DÂN", 400, 150, 3) + _words("CỘNG HÒA XÃ HỘI CHỦ NGHĨA", 1150, 150, 3),
        _words("Độc lập - Tự do - Hạnh phúc", 1300, 210, 4),
        _words("Thời gian ký kết hợp đồng là ba năm kể từ ngày ký", 300, 900, 5),
    )
    cleaned, stamp = find_esignature(page)
    assert stamp is not None
    assert stamp.text.splitlines() == ["SAO Y", "Ủy ban nhân dân tỉnh Mẫu", "Thời gian ký: 19/10/2023 10:56:22 +07:00"]
    x0, y0, x1, y1 = stamp.box
    assert (x0, y0) == (1698, 20) and y1 == 144 and x1 > 2000
    text = order_page_text(cleaned)
    assert "SAO Y" not in text and "19/10/2023" not in text
    assert "Độc lập - Tự do - Hạnh phúc" in text
    assert "Thời gian ký kết hợp đồng" in text  # prose is no stamp
    assert stamp.as_step() == {"box": list(stamp.box), "text": stamp.text}


def test_signed_by_stamp_in_the_signature_block() -> None:
    page = _page(
        _words("Nơi nhận:", 300, 2400, 0),
        _words("Ký bởi: Sở Mẫu", 1500, 2380, 1),
        _words("Email: somau@example.gov.vn", 1500, 2425, 2),
        _words("Cơ quan: Tỉnh Mẫu", 1500, 2470, 3),
        _words("Thời gian ký: 08.10.2025 09:12:00 +07:00", 1500, 2515, 4),
        _words("GIÁM ĐỐC", 1600, 2700, 5),
    )
    cleaned, stamp = find_esignature(page)
    assert stamp is not None and len(stamp.text.splitlines()) == 4
    text = order_page_text(cleaned)
    assert "Email" not in text and "GIÁM ĐỐC" in text and "Nơi nhận:" in text


def test_page_without_a_stamp_is_unchanged() -> None:
    page = _page(_words("Thời gian: Từ 8h00 - 11h30", 300, 900, 0), _words("Người ký thay mặt", 300, 960, 1))
    cleaned, stamp = find_esignature(page)
    assert stamp is None and cleaned is page
