"""Metadata extraction on invented Party and state documents (plain text and word boxes, with OCR noise)."""

from __future__ import annotations

import pytest

from pipeline.metadata import extract_metadata
from schemas.metadata import DocumentMetadata
from schemas.ocr import OcrPage, OcrWord

WIDTH, HEIGHT = 2480, 3508
CHAR_W, WORD_GAP, WORD_H = 24, 14, 44


def text_page(text: str, number: int = 1) -> OcrPage:
    """A page with text only (no word boxes)."""
    return OcrPage(number=number, text=text, words=[], confidence=0.9, width=WIDTH, height=HEIGHT, dpi=300)


def boxed_page(rows: list[tuple[int, list[tuple[int, str]]]], number: int = 1) -> OcrPage:
    """A page with word boxes: each row is (y, [(x0, text), ...]) and becomes one engine line, as when
    tesseract merges the two columns of a header or footer row into one line."""
    words: list[OcrWord] = []
    lines: list[str] = []
    for line_no, (y, segments) in enumerate(rows):
        texts = []
        for x0, segment in segments:
            x = x0
            for word in segment.split():
                w = len(word) * CHAR_W
                words.append(OcrWord(text=word, box=(x, y, x + w, y + WORD_H), confidence=0.93, line=line_no))
                x += w + WORD_GAP
            texts.append(segment)
        lines.append(" ".join(texts))
    return OcrPage(
        number=number, text="\n".join(lines), words=words, confidence=0.93, width=WIDTH, height=HEIGHT, dpi=300
    )


PARTY_SECRET = """ĐẢNG BỘ TỈNH QUẢNG NGÃI
HUYỆN ỦY SƠN TỊNH
*
Số 07-NQ/HU
MẬT
KHẨN
ĐẢNG CỘNG SẢN VIỆT NAM
Sơn Tịnh, ngày 4 tháng 3 năm 2019
NGHỊ QUYẾT
về phát triển nông nghiệp ứng dụng công nghệ cao
trên địa bàn huyện giai đoạn 2019 - 2025
I- TÌNH HÌNH
Ban Thường vụ Huyện ủy đánh giá việc bảo vệ bí mật nhà nước được bảo đảm.
Nơi nhận:
- Ban Thường vụ Tỉnh ủy (để b/c),
- Các chi bộ trực thuộc,
- Lưu Văn phòng Huyện ủy.
T/M BAN THƯỜNG VỤ
BÍ THƯ
Trần Văn Bình
"""


def test_party_document_from_text() -> None:
    md = extract_metadata([text_page(PARTY_SECRET)])
    assert md.code_number == "07"
    assert md.code_notation == "NQ/HU"
    assert md.type_name == "Nghị quyết"
    assert md.type_code == "01"
    assert md.issued_date == "2019-03-04"
    assert md.place == "Sơn Tịnh"
    assert md.organ_lines == ["ĐẢNG BỘ TỈNH QUẢNG NGÃI", "HUYỆN ỦY SƠN TỊNH"]
    assert md.organ_name == "Huyện ủy Sơn Tịnh"
    assert md.subject == "về phát triển nông nghiệp ứng dụng công nghệ cao trên địa bàn huyện giai đoạn 2019 - 2025"
    assert md.classification == "Mật"
    assert md.urgency == "Khẩn"
    assert md.recipients == ["Ban Thường vụ Tỉnh ủy (để b/c)", "Các chi bộ trực thuộc", "Lưu Văn phòng Huyện ủy"]
    assert md.authority == "T/M BAN THƯỜNG VỤ"
    assert md.signer_title == "BÍ THƯ"
    assert md.signer == "Trần Văn Bình"
    assert md.page_count == 1


def test_evidence_for_every_found_field() -> None:
    md = extract_metadata([text_page(PARTY_SECRET)])
    for field, value in md.model_dump(exclude={"evidence"}).items():
        if value not in (None, []):
            assert field in md.evidence, field
            assert 0.0 < md.evidence[field].confidence <= 1.0
    assert md.evidence["classification"].page == 1
    assert md.evidence["code_notation"].raw == "Số 07-NQ/HU"


STATE_DECISION_MERGED = """ỦY BAN NHÂN DÂN CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
TỈNH BÌNH ĐỊNH Độc lập - Tự do - Hạnh phúc
Số: 1O5/QÐ-UBND Bình Định, ngày 2O tháng 1l năm 2021
QUYET DINH
Về việc thành lập Hội đồng xác định giá trị tài liệu
CHỦ TỊCH ỦY BAN NHÂN DÂN TỈNH BÌNH ĐỊNH
Căn cứ Luật Lưu trữ ngày 11 tháng 11 năm 2011;
QUYẾT ĐỊNH:
Điều 1. Thành lập Hội đồng.
Nơi nhận: KT. CHỦ TỊCH
- Như Điều 3; PHÓ CHỦ TỊCH
- Lưu: VT, NC.
Lê Thị Hoa
"""


def test_state_decision_with_merged_columns_and_ocr_noise() -> None:
    md = extract_metadata([text_page(STATE_DECISION_MERGED)])
    assert md.code_number == "105"  # "1O5": letter O read for zero
    assert md.code_notation == "QĐ-UBND"  # Icelandic Eth fixed
    assert md.type_name == "Quyết định"  # "QUYET DINH" without diacritics
    assert md.type_code == "02"
    assert md.issued_date == "2021-11-20"  # "2O", "1l"
    assert md.place == "Bình Định"
    assert md.organ_name == "Ủy ban nhân dân tỉnh Bình Định"
    assert md.subject == "Về việc thành lập Hội đồng xác định giá trị tài liệu"
    assert md.classification is None
    assert md.urgency is None
    assert md.recipients == ["Như Điều 3", "Lưu: VT, NC"]
    assert md.authority == "KT. CHỦ TỊCH"
    assert md.signer_title == "PHÓ CHỦ TỊCH"
    assert md.signer == "Lê Thị Hoa"


def _party_letter_rows(stamp: list[tuple[int, list[tuple[int, str]]]]) -> list[tuple[int, list[tuple[int, str]]]]:
    return [
        (200, [(330, "THÀNH ỦY CẦN THƠ"), (1330, "ĐẢNG CỘNG SẢN VIỆT NAM")]),
        (270, [(430, "VĂN PHÒNG")]),
        (340, [(540, "*")]),
        (420, [(400, "Số 1203-CV/VPTU"), (1320, "Cần Thơ, ngày 17 tháng 10 năm 2016")]),
        (490, [(330, "V/v chỉnh lý tài liệu tồn đọng của")]),
        (550, [(380, "các cơ quan đảng")]),
        *stamp,
        (800, [(560, "Kính gửi: Các ban đảng, Văn phòng Thành ủy.")]),
        (900, [(500, "Thực hiện kế hoạch chỉnh lý, đề nghị các cơ quan rà soát hồ sơ mật và")]),
        (960, [(350, "tài liệu bí mật nhà nước trước khi giao nộp.")]),
        (1300, [(350, "Nơi nhận:"), (1450, "T/L BAN THƯỜNG VỤ")]),
        (1370, [(350, "- Như trên,"), (1420, "CHÁNH VĂN PHÒNG")]),
        (1440, [(350, "- Lưu Văn phòng.")]),
        (1700, [(1450, "Phạm Quốc Huy")]),
    ]


def test_party_letter_with_boxes_splits_columns() -> None:
    md = extract_metadata([boxed_page(_party_letter_rows([]))])
    assert md.code_number == "1203"
    assert md.code_notation == "CV/VPTU"
    assert md.type_name == "Công văn"
    assert md.type_code == "22"
    assert md.issued_date == "2016-10-17"
    assert md.place == "Cần Thơ"
    assert md.organ_lines == ["THÀNH ỦY CẦN THƠ", "VĂN PHÒNG"]
    assert md.organ_name == "Văn phòng Thành ủy Cần Thơ"
    assert md.subject == "V/v chỉnh lý tài liệu tồn đọng của các cơ quan đảng"
    assert md.recipients == ["Như trên", "Lưu Văn phòng"]
    assert md.authority == "T/L BAN THƯỜNG VỤ"
    assert md.signer_title == "CHÁNH VĂN PHÒNG"
    assert md.signer == "Phạm Quốc Huy"
    assert md.classification is None  # "hồ sơ mật", "bí mật nhà nước" are running text, not a stamp


@pytest.mark.parametrize(
    ("stamp", "classification", "urgency"),
    [
        ([(650, [(560, "TỐI MẬT")])], "Tối mật", None),
        ([(650, [(560, "TUYỆT MẬT")]), (720, [(560, "HỎA TỐC")])], "Tuyệt mật", "Hỏa tốc"),
        ([(650, [(560, "MAT")])], "Mật", None),  # diacritics lost
        ([(650, [(560, "MẶI")])], "Mật", None),  # one letter misread: flag rather than miss
        ([(650, [(560, "[rồi MẬT|")])], "Tối mật", None),  # boxed stamp, TỐI misread
        ([(650, [(560, "THƯỢNG KHẨN")])], None, "Thượng khẩn"),
    ],
)
def test_secrecy_and_urgency_stamps(
    stamp: list[tuple[int, list[tuple[int, str]]]], classification: str | None, urgency: str | None
) -> None:
    md = extract_metadata([boxed_page(_party_letter_rows(stamp))])
    assert md.classification == classification
    assert md.urgency == urgency


def test_secrecy_stamp_on_the_number_line() -> None:
    text = PARTY_SECRET.replace("Số 07-NQ/HU\nMẬT\n", "Số 07-NQ/HU MẬT\n")
    assert extract_metadata([text_page(text)]).classification == "Mật"


def test_mat_in_running_text_is_not_a_stamp() -> None:
    text = PARTY_SECRET.replace("MẬT\nKHẨN\n", "").replace(
        "I- TÌNH HÌNH", "BẢO VỆ BÍ MẬT\nmật\nCông tác bảo mật tài liệu mật được tăng cường."
    )
    md = extract_metadata([text_page(text)])
    assert md.classification is None
    assert md.urgency is None


def test_multi_page_conclusion_with_deputy_signer() -> None:
    page1 = """THÀNH ỦY HÀ TĨNH ĐẢNG CỘNG SẢN VIỆT NAM
BAN TUYÊN GIÁO
*
Số 12-KL/BTGTU Hà Tĩnh, ngày 0] tháng 6 năm 2O18
KET LUAN
của Thường trực Ban về công tác tuyên truyền
năm 2018
1. Kết quả
Nội dung trang một.
"""
    page2 = """Nội dung trang hai.
Nơi nhận: K/T TRƯỞNG BAN
- Các chi bộ, PHÓ TRƯỞNG BAN
- Lưu.
Đặng Thu Hà
"""
    md = extract_metadata([text_page(page1, 1), text_page(page2, 2)])
    assert md.page_count == 2
    assert md.code_number == "12"
    assert md.code_notation == "KL/BTGTU"
    assert md.type_name == "Kết luận"
    assert md.type_code == "32"  # no TT 05 code
    assert md.issued_date == "2018-06-01"  # "0]" and "2O18"
    assert md.organ_name == "Ban Tuyên giáo Thành ủy Hà Tĩnh"
    assert md.subject == "của Thường trực Ban về công tác tuyên truyền năm 2018"
    assert md.authority == "K/T TRƯỞNG BAN"
    assert md.signer_title == "PHÓ TRƯỞNG BAN"
    assert md.signer == "Đặng Thu Hà"
    assert md.evidence["signer"].page == 2
    assert md.recipients == ["Các chi bộ", "Lưu"]


def test_invalid_calendar_date_is_rejected() -> None:
    text = PARTY_SECRET.replace("ngày 4 tháng 3 năm 2019", "ngày 31 tháng 2 năm 2019")
    md = extract_metadata([text_page(text)])
    assert md.issued_date is None
    assert "issued_date" not in md.evidence


def test_empty_document() -> None:
    md = extract_metadata([text_page("")])
    assert md == DocumentMetadata(page_count=1, evidence=md.evidence)
    assert md.code_number is None and md.recipients == []


def test_body_date_is_not_the_issued_date() -> None:
    text = PARTY_SECRET.replace("Sơn Tịnh, ngày 4 tháng 3 năm 2019", "Sơn Tịnh, ngày 4 thg 3 n 2019").replace(
        "I- TÌNH HÌNH", "Căn cứ Quy định ngày 12 tháng 5 năm 2018 của Ban Thường vụ;"
    )
    assert extract_metadata([text_page(text)]).issued_date is None


def test_recipient_spelling_repaired_from_the_document_itself() -> None:
    text = PARTY_SECRET.replace(
        "- Các chi bộ trực thuộc,", "- Văn phòng 'Irung ương Đảng,\n- Các đồng chí Huyện uỷ viên,"
    ).replace(
        "I- TÌNH HÌNH",
        "Thực hiện chỉ đạo của Trung ương, Huyện ủy giao các đồng chí Huyện ủy viên theo dõi; Trung ương và"
        " Huyện ủy đã",
    )
    md = extract_metadata([text_page(text)])
    assert "Văn phòng Trung ương Đảng" in md.recipients  # impossible onset "Ir" read for "Tr"
    assert "Các đồng chí Huyện ủy viên" in md.recipients  # the document's dominant spelling of "Huyện ủy"


def test_digit_lookalikes_with_marks_read_as_digits() -> None:
    page = text_page(
        "THÀNH ỦY QUẢNG NAM\nSố 7-TB/TU\nQuảng Nam, ngày 12 tháng 0I năm ï999\nTHÔNG BÁO\nvề việc thử nghiệm\n"
    )
    assert extract_metadata([page]).issued_date == "1999-01-12"


@pytest.mark.parametrize(
    ("printed", "organ", "place"),
    [
        ("ĐÀ NẰNG", "Văn phòng Thành ủy Đà Nẵng", "Đà Nẵng"),  # one tone mark misread
        ("QUANG NGAI", "Văn phòng Thành ủy Quảng Ngãi", "Quảng Ngãi"),  # marks lost
    ],
)
def test_known_place_names_are_spelled_right(printed: str, organ: str, place: str) -> None:
    written = place if printed == "ĐÀ NẰNG" else "Quang Ngai"
    page = text_page(
        f"THÀNH ỦY {printed}\nVĂN PHÒNG\n*\nSố 12-BC/VPTU\n{written}, ngày 3 tháng 4 năm 2021\n"
        "BÁO CÁO\nvề công tác văn thư\n"
    )
    meta = extract_metadata([page])
    assert meta.organ_name == organ
    assert meta.place == place


def test_words_that_only_fold_like_a_place_are_left_alone() -> None:
    from pipeline.metadata.repair import fix_place_names

    assert fix_place_names("bảo đảm long an toàn") == "bảo đảm long an toàn"  # not capitalised: not a name
    assert fix_place_names("Thành ủy Đà Nằng.") == "Thành ủy Đà Nẵng."


@pytest.mark.parametrize(
    ("stamp", "classification"),
    [
        ([(650, [(560, "KHẨN/MẬT")])], "Mật"),
        ([(650, [(560, "BẢN SAO-MẬT")])], "Mật"),
        ([(650, [(560, "SAO-TỐI MẬT")])], "Tối mật"),
    ],
)
def test_mark_joined_by_a_dash_or_slash(stamp: list[tuple[int, list[tuple[int, str]]]], classification: str) -> None:
    md = extract_metadata([boxed_page(_party_letter_rows(stamp))])
    assert md.classification == classification


def test_mark_joined_by_a_slash_in_plain_text() -> None:
    text = PARTY_SECRET.replace("MẬT\nKHẨN\n", "KHẨN/MẬT\n")
    md = extract_metadata([text_page(text)])
    assert md.classification == "Mật"
    assert md.urgency == "Khẩn"
