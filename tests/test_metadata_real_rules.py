"""Rules that keep metadata from inventing what was not read: title snaps that would add words, consensus repairs
that would erase a tone mark, trích yếu lines read twice or led by a dash. Pages are invented."""

from __future__ import annotations

import pytest

from pipeline.metadata import extract_metadata
from pipeline.metadata.footer import is_title_fragment, person_name
from pipeline.metadata.fuzzy import matched_shares
from pipeline.metadata.repair import Lexicon, has_tone
from schemas.ocr import OcrPage, OcrWord

WIDTH, HEIGHT, CHAR_W, GAP, H = 2480, 3508, 24, 14, 44
Row = tuple[int, int, str, float]  # y, x0, text, OCR confidence (one engine line)


def page(rows: list[Row]) -> OcrPage:
    words: list[OcrWord] = []
    for line_no, (y, x0, text, conf) in enumerate(rows):
        x = x0
        for word in text.split():
            w = len(word) * CHAR_W
            words.append(OcrWord(text=word, box=(x, y, x + w, y + H), confidence=conf, line=line_no))
            x += w + GAP
    text = "\n".join(t for _, _, t, _ in rows)
    return OcrPage(number=1, text=text, words=words, confidence=0.93, width=WIDTH, height=HEIGHT, dpi=300)


HEADER: list[Row] = [
    (200, 300, "CÔNG AN TỈNH HÀ NAM", 0.95),
    (200, 1300, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 0.95),
    (270, 300, "PHÒNG CẢNH SÁT GIAO THÔNG", 0.95),
    (280, 1400, "Độc lập - Tự do - Hạnh phúc", 0.95),
    (360, 400, "Số: 212/CV-PC08", 0.95),
    (370, 1310, "Hà Nam, ngày 12 tháng 3 năm 2021", 0.95),
]


def _signed(title_line: str) -> OcrPage:
    return page([*HEADER, (440, 370, "V/v kiểm tra xe", 0.95), (800, 400, "Đề nghị các đơn vị thực hiện./.", 0.95),
                 (1000, 300, "Nơi nhận:", 0.95), (1000, 1500, title_line, 0.9), (1060, 300, "- Như trên;", 0.95),
                 (1400, 1400, "Lê Văn Nam", 0.95)])


@pytest.mark.parametrize("read", ["TRƯỜNG", "U TRƯỞNG", "PHÓ GIÁM", "GIÁM", "X2 TRƯỜNG"])
def test_a_title_fragment_is_not_expanded_into_a_known_title(read: str) -> None:
    """A seal leaves part of the title: the words it hides are not made up (``TRƯỜNG`` is not ``BỘ TRƯỞNG``)."""
    md = extract_metadata([_signed(read)])
    assert md.signer_title is None and "signer_title" not in md.evidence
    assert md.signer == "Lê Văn Nam"


@pytest.mark.parametrize(("read", "title"), [("IỆU TRƯỞNG", "HIỆU TRƯỞNG"), ("CHỦ TICH", "CHỦ TỊCH"),
                                             ("PHO GIÁM ĐÓC", "PHÓ GIÁM ĐỐC"), ("TỔNG BIÊN TẬP", "TỔNG BIÊN TẬP")])
def test_misread_letters_of_a_read_title_are_still_corrected(read: str, title: str) -> None:
    assert extract_metadata([_signed(read)]).signer_title == title


def test_word_shares_and_fragments() -> None:
    assert matched_shares("truong", ["bo", "truong"]) == [0.0, 1.0]
    assert matched_shares("ieutruong", ["hieu", "truong"]) == [0.75, 1.0]
    assert is_title_fragment("GIÁM") and is_title_fragment("TRƯỜNG")
    assert not is_title_fragment("GIÁM ĐỐC") and not is_title_fragment("TỔNG BIÊN TẬP")


def _lexicon(*lines: str) -> Lexicon:
    return Lexicon([[(w, 0.95) for w in line.split()] for line in lines])


def test_consensus_never_erases_a_tone_that_was_read() -> None:
    lex = _lexicon("Các khoa quản lý", "các khoa chuyên môn", "SV các khóa")
    assert lex.fix("SV các khóa") == "SV các khóa"  # khoa (faculty) and khóa (course) are two words
    lex = _lexicon("Thành ủy", "Thành ủy", "Thành ủy", "Thanh ủy")
    assert lex.fix("Thanh ủy giao") == "Thành ủy giao"  # a dropped mark is still restored
    assert has_tone("khóa") and has_tone("ủy") and not has_tone("khoa") and not has_tone("PHÔ")


def test_a_word_repaired_with_its_left_neighbour_is_not_undone_by_its_right_one() -> None:
    lex = _lexicon("THÀNH PHỐ", "THÀNH PHỐ", "THÀNH PHỐ", "THÀNH PHÓ ĐÀ NẴNG")
    assert lex.fix("THÀNH PHÓ ĐÀ NẴNG") == "THÀNH PHỐ ĐÀ NẴNG"


def test_recipient_keeps_a_well_read_word_the_body_spells_otherwise() -> None:
    md = extract_metadata([page([
        *HEADER, (440, 370, "V/v kiểm tra xe", 0.95),
        (700, 400, "Đề nghị các khoa quản lý, các khoa chuyên môn thực hiện./.", 0.95),
        (1000, 300, "Nơi nhận:", 0.95), (1000, 1500, "TRƯỞNG PHÒNG", 0.95),
        (1060, 300, "- Các khoa quản lý;", 0.95), (1120, 300, "- SV các khóa;", 0.95),
        (1180, 300, "- Lưu: VT.", 0.95), (1400, 1400, "Lê Văn Nam", 0.95)])])
    assert md.recipients == ["Các khoa quản lý", "SV các khóa", "Lưu: VT"]


def test_vv_subject_goes_on_with_a_dash_led_line_in_the_header_column() -> None:
    md = extract_metadata([page([
        *HEADER, (440, 330, "V/v thông báo hoạt động của tổ chức", 0.95), (500, 390, "- Hội đồng hương phố cổ", 0.9),
        (650, 500, "Kính gửi: - Các đơn vị trực thuộc;", 0.95), (710, 740, "- Công an các huyện.", 0.95),
        (800, 400, "Đề nghị các đơn vị thực hiện./.", 0.95)])])
    assert md.subject == "V/v thông báo hoạt động của tổ chức - Hội đồng hương phố cổ"


def test_vv_subject_stops_at_a_body_bullet_across_the_page() -> None:
    md = extract_metadata([page([
        *HEADER, (440, 330, "V/v kiểm tra xe", 0.95),
        (500, 340, "- Các đơn vị trực thuộc kiểm tra toàn bộ phương tiện trước ngày 15 tháng 3 năm 2021;", 0.95)])])
    assert md.subject == "V/v kiểm tra xe"


def test_a_line_read_over_a_subject_line_is_not_part_of_it() -> None:
    """Handwriting across the trích yếu is read as a line of its own whose words lie on the printed words."""
    md = extract_metadata([page([
        *HEADER, (440, 370, "V/v bảo đảm an toàn giao thông", 0.95), (480, 400, "3i hề và Trẻ", 0.55),
        (500, 400, "trong dịp nghỉ hè và kỳ thi", 0.95), (560, 520, "năm 2021", 0.95),
        (800, 400, "Đề nghị các đơn vị thực hiện./.", 0.95)])])
    assert md.subject == "V/v bảo đảm an toàn giao thông trong dịp nghỉ hè và kỳ thi năm 2021"


def test_one_misread_word_does_not_cut_a_recipient_part() -> None:
    md = extract_metadata([page([
        *HEADER, (440, 370, "V/v kiểm tra xe", 0.95), (700, 400, "Đề nghị các đơn vị thực hiện./.", 0.95),
        (1000, 300, "Nơi nhận:", 0.95), (1000, 1500, "TRƯỞNG PHÒNG", 0.95),
        (1060, 300, "- Các đội, Cán bộ chiến sĩ (để t\u2044h);", 0.95), (1120, 300, "- Lưu: VT. Jl#", 0.95),
        (1400, 1400, "Lê Văn Nam", 0.95)])])
    assert md.recipients == ["Các đội, Cán bộ chiến sĩ (để t\u2044h)", "Lưu: VT"]


@pytest.mark.parametrize(("line", "name"), [("TS: [rương Huy Hoàng", "Trương Huy Hoàng"),
                                            ("(guyễn Văn An", "Nguyễn Văn An"), ("[ưu Văn Hà", "Lưu Văn Hà")])
def test_a_family_names_capital_read_as_a_sign_is_put_back_and_left_for_review(line: str, name: str) -> None:
    """A signature stroke across the T of ``Trương``: the sign and the letters after it fit one family name only."""
    md = extract_metadata([_signed_name("HIỆU TRƯỞNG", line)])
    assert md.signer == name
    assert md.evidence["signer"].confidence < 0.6


@pytest.mark.parametrize("line", ["[ương Huy Hoàng", "[ê Văn Nam", "|x Văn Nam"])
def test_a_sign_that_fits_no_single_family_name_is_not_mended(line: str) -> None:
    assert person_name(line) == person_name(line, mend=False)


def _signed_name(title: str, name_line: str) -> OcrPage:
    return page([*HEADER, (440, 370, "V/v kiểm tra xe", 0.95), (800, 400, "Đề nghị các đơn vị thực hiện./.", 0.95),
                 (1000, 300, "Nơi nhận:", 0.95), (1000, 1500, title, 0.9), (1060, 300, "- Như trên;", 0.95),
                 (1400, 1400, name_line, 0.95)])


def _signed_for(authority: str, title_line: str) -> OcrPage:
    return page([*HEADER, (440, 370, "V/v kiểm tra xe", 0.95), (800, 400, "Đề nghị các đơn vị thực hiện./.", 0.95),
                 (1000, 300, "Nơi nhận:", 0.95), (1000, 1500, authority, 0.9), (1060, 300, "- Như trên;", 0.95),
                 (1060, 1500, title_line, 0.9), (1400, 1400, "Lê Văn Nam", 0.95)])


@pytest.mark.parametrize(("read", "title"), [("ZfƯONDRHÒNG KẾ TOÁN", "TRƯỞNG PHÒNG KẾ TOÁN"),
                                             ("TRUONGB4N TỔ CHỨC", "TRƯỞNG BAN TỔ CHỨC"),
                                             ("'V|ỤTRƯỞNG PHÁP CHẾ", "VỤ TRƯỞNG PHÁP CHẾ")])
def test_a_delegated_signers_garbled_title_is_read_as_a_unit_heads_with_its_unit(read: str, title: str) -> None:
    """Under ``TL. GIÁM ĐỐC`` the signer heads a unit (NĐ 30): a title whose first words the ink garbled is the
    closest unit-head title, the unit kept as printed, at a certainty low enough to be reviewed."""
    md = extract_metadata([_signed_for("TL. GIÁM ĐỐC", read)])
    assert md.signer_title == title
    assert md.evidence["signer_title"].confidence < 0.7


@pytest.mark.parametrize("read", ["U TRƯỞNG", "TRƯỜNG", "X2 TRƯỜNG", "Xz QĐ AB"])
def test_a_delegated_signers_title_fragment_is_not_made_a_title(read: str) -> None:
    """Half of every word of the title must have been read: ``U TRƯỞNG`` is not ``VỤ TRƯỞNG``."""
    assert extract_metadata([_signed_for("TL. GIÁM ĐỐC", read)]).signer_title is None


def test_without_a_delegation_a_garbled_title_stays_unread() -> None:
    assert extract_metadata([_signed_for("KT. GIÁM ĐỐC", "ZfƯONDRHÒNG KẾ TOÁN")]).signer_title != "TRƯỞNG PHÒNG KẾ TOÁN"
