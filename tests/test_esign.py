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


def test_nothing_but_stamp_lines_goes_with_a_stamp() -> None:
    """Ký bởi above a header: the header, its number and its secrecy mark stay page text."""
    page = _page(
        _words("Ký bởi: Văn phòng Tỉnh ủy", 300, 40, 0),
        _words("Email: vanphong@example.gov.vn", 300, 85, 1),
        _words("TỈNH ỦY MẪU", 300, 150, 2) + _words("ĐẢNG CỘNG SẢN VIỆT NAM", 1400, 150, 2),
        _words("Số 15-NQ/TU", 300, 210, 3),
        _words("MẬT", 300, 270, 4),
    )
    cleaned, stamp = find_esignature(page)
    assert stamp is not None and stamp.text.splitlines() == ["Ký bởi: Văn phòng Tỉnh ủy",
                                                             "Email: vanphong@example.gov.vn"]
    text = order_page_text(cleaned)
    assert "MẬT" in text and "15-NQ/TU" in text and "TỈNH ỦY MẪU" in text


def test_a_paper_copy_stamp_and_prose_are_no_e_signature() -> None:
    paper_copy = _page(
        _words("SAO Y BẢN CHÍNH", 300, 2800, 0),
        _words("Số 05-BS/VPTU", 300, 2850, 1),
        _words("Nơi nhận:", 300, 2900, 2),
        _words("- Lưu Văn phòng.", 300, 2950, 3),
    )
    prose = _page(
        _words("Người ký: đồng chí Nguyễn Văn A, Bí thư.", 300, 1000, 0),
        _words("Tổng kinh phí là 15.000.000.000 đồng,", 300, 1050, 1),
    )
    copy_without_time = _page(_words("SAO Y", 300, 2800, 0), _words("Văn phòng Tỉnh ủy", 300, 2850, 1))
    for page in (paper_copy, prose, copy_without_time):
        cleaned, stamp = find_esignature(page)
        assert stamp is None and cleaned is page


def test_a_lone_signing_time_takes_no_line_above_it() -> None:
    page = _page(
        _words("Các cấp ủy tổ chức quán triệt, triển khai thực hiện.", 300, 1000, 0),
        _words("Nghị quyết có hiệu lực kể từ ngày ký.", 300, 1050, 1),
        _words("Thời gian ký: 19/10/2023 10:56:22 +07:00", 300, 1100, 2),
    )
    cleaned, stamp = find_esignature(page)
    assert stamp is not None and stamp.text == "Thời gian ký: 19/10/2023 10:56:22 +07:00"
    assert "triển khai" in order_page_text(cleaned) and "hiệu lực" in order_page_text(cleaned)


def test_a_copy_stamp_whose_time_fused_into_the_motto_line() -> None:
    page = _page(
        _words("SAO Y", 1700, 20, 0),
        _words("Ủy ban nhân dân tỉnh Mẫu", 1702, 62, 1),
        _words("CỘNG HÒA XÃ HỘI CHỦ ý] N0:56: 22 +07:00", 1150, 110, 2),  # one piece: motto and stamp fused
    )
    cleaned, stamp = find_esignature(page)
    assert stamp is not None
    assert stamp.text.splitlines() == ["SAO Y", "Ủy ban nhân dân tỉnh Mẫu", "N0:56: 22 +07:00"]
    assert "CỘNG HÒA XÃ HỘI CHỦ" in order_page_text(cleaned)  # the motto's words stay page text
